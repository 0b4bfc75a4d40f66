// Web Notifications: one per new message that the policy lets through (`policy.ts`, the
// desktop's rules), a burst of one room updating its notification in place (same `tag`), and a
// click that focuses the tab and opens the room.
//
// Permission is asked only from something the user did (their first message sent from this
// browser, or the button in settings), never on page load. Browsers offer notifications only to
// secure pages (https, or localhost); elsewhere they are reported as unavailable.

import type { AlertPermission } from '../../ipc';
import type { Notice } from './policy';

export class Alerts {
  constructor(private readonly open: (room: number) => void) {}

  permission(): AlertPermission {
    if (typeof Notification !== 'function' || !window.isSecureContext) return 'unsupported';
    return Notification.permission;
  }

  /** Asks once, if nobody has decided yet. Call only from a user's gesture. */
  ask(): Promise<AlertPermission> {
    if (this.permission() !== 'default') return Promise.resolve(this.permission());
    return Notification.requestPermission().then(() => this.permission());
  }

  show(notice: Notice): void {
    if (this.permission() !== 'granted') return;
    let note: Notification;
    try {
      note = new Notification(notice.title, { body: notice.body, tag: notice.key, silent: notice.count > 1 });
    } catch (err) {
      console.warn('the notification could not be shown', err);
      return;
    }
    note.onclick = () => {
      window.focus();
      this.open(notice.room);
      note.close();
    };
  }
}
