// Whether a new message raises a notification in the browser: the desktop's rules
// (`crates/client/src/notify.rs`), kept pure — no DOM, the time passed in — so they are tested
// on their own.
//
// Nothing is raised for the user's own message, for the room the user is looking at, for a room
// at level "nothing", for a room at "mentions" unless the message mentions the user or is a direct
// message, or while "do not disturb" is on. Alerts of one room that follow each other within
// `BURST_WINDOW_MS` are one notification that grows (same `key`, `count` one higher).

import type { NotifyLevel } from '../../generated/desktop';
import type { MessageAlert } from '../../generated/protocol';

/** How long after a room's previous notification a new alert still joins its burst. */
export const BURST_WINDOW_MS = 5000;

/** At most this many characters of a message are shown; a cut preview ends in `…`. */
export const PREVIEW_CHARS = 140;

export interface Notice {
  /** The room a click opens. */
  room: number;
  messageId: number;
  /** 1, or the size of the burst so far. */
  count: number;
  title: string;
  body: string;
  /** The burst it belongs to: a later notice with the same key replaces the one shown. */
  key: string;
}

interface Burst {
  key: string;
  count: number;
  last: number;
}

let nextKey = 1;

export class Policy {
  private focused: number | null = null;
  private dnd = false;
  private readonly levels = new Map<number, NotifyLevel>();
  private readonly bursts = new Map<number, Burst>();

  constructor(private readonly me: number) {}

  /** The room the user is looking at (open, in a focused tab), or none. Ends that room's burst. */
  setFocusedRoom(room: number | null): void {
    this.focused = room;
    if (room !== null) this.bursts.delete(room);
  }

  setDnd(on: boolean): void {
    this.dnd = on;
  }

  /** A room's own level; `null` makes it follow the default (every message) again. */
  setRoomLevel(room: number, level: NotifyLevel | null): void {
    if (level === null) this.levels.delete(room);
    else this.levels.set(room, level);
  }

  level(room: number): NotifyLevel {
    return this.levels.get(room) ?? 'all';
  }

  /** Decides for one alert received at `now` (ms). `label` is `#room` or a DM peer's name. */
  onAlert(alert: MessageAlert, label: string, now: number): Notice | null {
    if (!this.wants(alert, !label.startsWith('#'))) return null;
    for (const [room, burst] of this.bursts) {
      if (now - burst.last > BURST_WINDOW_MS) this.bursts.delete(room);
    }
    let burst = this.bursts.get(alert.room);
    if (burst === undefined) {
      burst = { key: `tidings-${nextKey++}`, count: 1, last: now };
      this.bursts.set(alert.room, burst);
    } else {
      burst.count += 1;
      burst.last = now;
    }
    const [title, body] = texts(alert, label, burst.count);
    return { room: alert.room, messageId: alert.id, count: burst.count, title, body, key: burst.key };
  }

  private wants(alert: MessageAlert, direct: boolean): boolean {
    if (alert.author.id === this.me || this.focused === alert.room || this.dnd) return false;
    switch (this.level(alert.room)) {
      case 'all':
        return true;
      case 'mentions':
        // A direct message is addressed to the user: it counts as a mention.
        return alert.mentions_you === true || direct;
      case 'nothing':
        return false;
    }
  }
}

/** The start of `body`, at most `PREVIEW_CHARS` characters (code points), `…` marking a cut. */
export function preview(body: string): string {
  const chars = Array.from(body);
  if (chars.length <= PREVIEW_CHARS) return body;
  return `${chars.slice(0, PREVIEW_CHARS - 1).join('')}…`;
}

function texts(alert: MessageAlert, label: string, count: number): [string, string] {
  const author = alert.author.name;
  if (label.startsWith('#')) {
    if (count > 1) return [`${count} new messages in ${label}`, `${author}: ${alert.preview}`];
    return [alert.mentions_you === true ? `${author} mentioned you in ${label}` : `${author} in ${label}`, alert.preview];
  }
  return [count > 1 ? `${count} new messages from ${label}` : label, alert.preview];
}
