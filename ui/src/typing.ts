// "bo is typing…" under the open room's messages, from `typing` events. Each one lasts a few
// seconds unless renewed; a message from the typist ends it at once.

import { h, setText } from './dom';
import type { RoomId, UserId, UserRef } from './ipc';

const TYPING_LASTS_MS = 5000;

export class TypingIndicator {
  readonly element: HTMLElement;
  private typists = new Map<RoomId, Map<UserId, { name: string; until: number }>>();
  private room: RoomId | null = null;
  private me: UserId = 0;
  private timer: number | null = null;

  constructor() {
    this.element = h('div', {
      class: 'typing',
      testid: 'typing-indicator',
      'aria-live': 'polite',
    });
  }

  setMe(me: UserId): void {
    this.me = me;
  }

  setRoom(room: RoomId | null): void {
    this.room = room;
    this.render();
  }

  typing(room: RoomId, user: UserRef): void {
    if (user.id === this.me) return;
    let inRoom = this.typists.get(room);
    if (inRoom === undefined) {
      inRoom = new Map();
      this.typists.set(room, inRoom);
    }
    inRoom.set(user.id, { name: user.name, until: Date.now() + TYPING_LASTS_MS });
    this.render();
  }

  /** `user` sent a message to `room`: they are done typing it. */
  stopped(room: RoomId, user: UserId): void {
    if (this.typists.get(room)?.delete(user) === true) this.render();
  }

  private render(): void {
    const now = Date.now();
    let next = Infinity;
    for (const [room, typists] of this.typists) {
      for (const [id, t] of typists) {
        if (t.until <= now) typists.delete(id);
        else next = Math.min(next, t.until);
      }
      if (typists.size === 0) this.typists.delete(room);
    }
    const names =
      this.room === null ? [] : [...(this.typists.get(this.room)?.values() ?? [])].map((t) => t.name);
    setText(this.element, describe(names));

    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    if (next !== Infinity) {
      this.timer = window.setTimeout(() => this.render(), next - now + 50);
    }
  }
}

function describe(names: string[]): string {
  const [a, b] = names;
  if (a === undefined) return '';
  if (b === undefined) return `${a} is typing…`;
  if (names.length === 2) return `${a} and ${b} are typing…`;
  return 'Several people are typing…';
}
