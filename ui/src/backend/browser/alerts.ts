// Web Notifications: one per new message that the policy lets through (`policy.ts`, the
// desktop's rules), a burst of one room updating its notification in place (same `tag`), and a
// click that focuses the tab and opens the room.
//
// Permission is asked only from something the user did (their first message sent from this
// browser, or the button in settings), never on page load. Browsers offer notifications only to
// secure pages (https, or localhost); elsewhere they are reported as unavailable.

import type { AlertPermission } from '../../ipc';
import type { Notice } from './policy';

/** The notifications kept for withdrawing: the newest ones shown. */
const KEEP_SHOWN = 100;

export class Alerts {
  /** Notifications shown, by the message each shows, so a deleted message's can be withdrawn. */
  private readonly shown = new Map<number, Notification>();

  constructor(private readonly open: (room: number) => void) {}

  /** The message was deleted: its notification, if one is showing it, goes. */
  retract(messageId: number): void {
    this.shown.get(messageId)?.close();
    this.shown.delete(messageId);
  }


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
    this.shown.set(notice.messageId, note);
    note.onclose = () => this.shown.delete(notice.messageId);
    if (this.shown.size > KEEP_SHOWN) {
      const oldest = this.shown.keys().next().value;
      if (oldest !== undefined) this.shown.delete(oldest);
    }
    note.onclick = () => {
      window.focus();
      this.open(notice.room);
      note.close();
    };
  }
}
