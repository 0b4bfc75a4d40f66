// What this browser keeps for one user in localStorage: drafts, notification levels, "do not
// disturb" and a pinned transport. None of it is secret (the session is an HttpOnly cookie).

import type { NotifyLevel, TransportKind } from '../../ipc';

export class Prefs {
  constructor(private readonly user: number) {}

  private key(name: string): string {
    return `tidings.${this.user}.${name}`;
  }

  private get(name: string): string | null {
    try {
      return window.localStorage.getItem(this.key(name));
    } catch {
      return null;
    }
  }

  private set(name: string, value: string | null): void {
    try {
      if (value === null) window.localStorage.removeItem(this.key(name));
      else window.localStorage.setItem(this.key(name), value);
    } catch {
      // Storage full or refused: the setting lasts until the page is closed.
    }
  }

  draft(room: number): string | null {
    return this.get(`draft.${room}`);
  }

  setDraft(room: number, text: string): void {
    this.set(`draft.${room}`, text === '' ? null : text);
  }

  level(room: number): NotifyLevel | null {
    const v = this.get(`level.${room}`);
    return v === 'all' || v === 'mentions' || v === 'nothing' ? v : null;
  }

  /** Every room with a level of its own. */
  levels(): Array<[number, NotifyLevel]> {
    const out: Array<[number, NotifyLevel]> = [];
    const prefix = this.key('level.');
    try {
      for (let i = 0; i < window.localStorage.length; i++) {
        const k = window.localStorage.key(i);
        if (k === null || !k.startsWith(prefix)) continue;
        const room = Number(k.slice(prefix.length));
        const level = this.level(room);
        if (Number.isInteger(room) && level !== null) out.push([room, level]);
      }
    } catch {
      // No storage, no levels.
    }
    return out;
  }

  setLevel(room: number, level: NotifyLevel | null): void {
    this.set(`level.${room}`, level);
  }

  dnd(): boolean {
    return this.get('dnd') === '1';
  }

  setDnd(on: boolean): void {
    this.set('dnd', on ? '1' : null);
  }

  transport(): TransportKind | null {
    const v = this.get('transport');
    const kinds: TransportKind[] = ['web_socket', 'sse', 'streaming', 'iframe', 'long_polling', 'short_polling'];
    return kinds.find((k) => k === v) ?? null;
  }

  setTransport(kind: TransportKind | null): void {
    this.set('transport', kind);
  }
}
