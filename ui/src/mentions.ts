// `@` completion in the composer: typing `@` and the start of a name lists the open room's
// members whose name starts with it (ignoring case). Up and Down move, Enter or Tab puts
// `@name ` in place of what was typed, Escape closes, and a click picks. The members of a room
// are fetched when the list first opens there, and again each time it opens.

import { h } from './dom';
import { commands, type RoomId, type UserRef } from './ipc';

/** The most names the list shows. */
const MAX_SHOWN = 8;
/** A name being typed right before the caret: `@` at the start or after a non-name character. */
const TYPED = /(?:^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]*)$/;

export class MentionList {
  readonly element: HTMLElement;
  private members = new Map<RoomId, readonly UserRef[]>();
  private matches: UserRef[] = [];
  private active = 0;
  /** Where the `@` being completed is in the text; -1 when the list is closed. */
  private at = -1;

  constructor(
    private readonly textarea: HTMLTextAreaElement,
    private readonly room: () => RoomId | null,
    /** Called after a name was put in the text. */
    private readonly inserted: () => void,
  ) {
    this.element = h('ul', { class: 'mention-list', testid: 'mention-list', role: 'listbox', hidden: true });
  }

  /** The text or the caret moved: opens, narrows or closes the list. */
  update(): void {
    const room = this.room();
    const caret = this.textarea.selectionStart;
    const typed = room === null || caret !== this.textarea.selectionEnd ? null : TYPED.exec(this.textarea.value.slice(0, caret));
    if (room === null || typed === null) {
      this.close();
      return;
    }
    const partial = typed[1] ?? '';
    const opening = this.at < 0;
    this.at = caret - partial.length - 1;
    const known = this.members.get(room);
    if (known !== undefined) this.show(known, partial);
    if (opening || known === undefined) {
      commands
        .members(room)
        .then((members) => {
          this.members.set(room, members);
          // Still completing in the same room: show the fresh list.
          if (this.at >= 0 && this.room() === room) this.update();
        })
        .catch(() => undefined);
    }
  }

  /** A key pressed in the composer; true when the list took it. */
  key(event: KeyboardEvent): boolean {
    if (this.at < 0 || this.matches.length === 0 || event.isComposing) return false;
    switch (event.key) {
      case 'ArrowDown':
        this.move(1);
        break;
      case 'ArrowUp':
        this.move(-1);
        break;
      case 'Enter':
      case 'Tab': {
        const user = this.matches[this.active];
        if (user === undefined) return false;
        this.pick(user);
        break;
      }
      case 'Escape':
        this.close();
        break;
      default:
        return false;
    }
    event.preventDefault();
    return true;
  }

  close(): void {
    this.at = -1;
    this.matches = [];
    this.element.hidden = true;
    this.element.replaceChildren();
  }

  private show(members: readonly UserRef[], partial: string): void {
    const lower = partial.toLowerCase();
    this.matches = members.filter((m) => m.name.toLowerCase().startsWith(lower)).slice(0, MAX_SHOWN);
    this.active = Math.min(this.active, Math.max(0, this.matches.length - 1));
    this.render();
  }

  private move(by: number): void {
    const n = this.matches.length;
    this.active = (this.active + by + n) % n;
    this.render();
  }

  private render(): void {
    this.element.hidden = this.matches.length === 0;
    this.element.replaceChildren(
      ...this.matches.map((user, i) => {
        const item = h(
          'li',
          {
            class: i === this.active ? 'mention-option active' : 'mention-option',
            role: 'option',
            testid: 'mention-option',
            'data-name': user.name,
            'aria-selected': i === this.active ? 'true' : 'false',
          },
          `@${user.name}`,
        );
        // Before the textarea loses focus to the click.
        item.addEventListener('mousedown', (event) => {
          event.preventDefault();
          this.pick(user);
        });
        return item;
      }),
    );
  }

  /** Puts `@name ` in place of the `@` and what follows it up to the caret. */
  private pick(user: UserRef): void {
    const text = this.textarea.value;
    const caret = this.textarea.selectionStart;
    const before = `${text.slice(0, this.at)}@${user.name} `;
    this.textarea.value = before + text.slice(caret);
    this.textarea.setSelectionRange(before.length, before.length);
    this.close();
    this.inserted();
  }
}
