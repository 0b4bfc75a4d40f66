// Search: a pane in place of the open room, as settings is. Words typed are searched across the
// user's rooms (or the open room alone) as they are typed, newest first; each hit shows its room,
// author and time and the stretch of text the server picked, the matched words marked. A click
// opens the message in its room. The text is put in as text nodes and <mark> elements, never as
// markup.

import { h, setText } from './dom';
import { commands, toAppError, type Message, type RoomId, type RoomState, type SearchHit, type SearchResults } from './ipc';
import { roomTitle } from './rooms';
import { fullTime, messageTime } from './time';

/** How long typing must pause before what was typed is searched. */
const TYPING_PAUSE_MS = 300;

export interface SearchHooks {
  /** A hit was picked: show it in its room. */
  open(message: Message): void;
  close(): void;
  /** The user's rooms, to name each hit's. */
  room(id: RoomId): RoomState | undefined;
}

/** What one search asked, to fetch its next page. */
interface Asked {
  query: string;
  room: RoomId | null;
}

export class SearchPanel {
  readonly element: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly scope: HTMLInputElement;
  private readonly scopeLine: HTMLElement;
  private readonly scopeLabel: HTMLElement;
  private readonly status: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly more: HTMLButtonElement;
  private room: RoomState | null = null;
  /** Counts searches started, so an answer to an older one is dropped. */
  private sequence = 0;
  private asked: Asked | null = null;
  private oldest: number | null = null;
  private timer: number | null = null;

  constructor(private readonly hooks: SearchHooks) {
    const close = h('button', { type: 'button', class: 'secondary', testid: 'search-close' }, 'Back to chat');
    close.addEventListener('click', () => hooks.close());

    this.input = h('input', {
      type: 'search',
      id: 'search-input',
      testid: 'search-input',
      placeholder: 'Search messages',
      autocomplete: 'off',
      spellcheck: 'false',
      maxlength: 200,
      'aria-describedby': 'search-status',
    });
    this.input.addEventListener('input', () => this.typed());
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.run();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        hooks.close();
      }
    });
    this.scope = h('input', { type: 'checkbox', id: 'search-scope', testid: 'search-this-room' });
    this.scope.addEventListener('change', () => this.run());
    this.scopeLabel = h('span', {});
    this.scopeLine = h('label', { class: 'check', for: 'search-scope' }, this.scope, this.scopeLabel);

    this.status = h('p', { class: 'muted small', id: 'search-status', testid: 'search-status', role: 'status' });
    this.list = h('ol', { class: 'search-hits', testid: 'search-hits', 'aria-label': 'Messages found' });
    this.more = h('button', { type: 'button', class: 'secondary', testid: 'search-more', hidden: true }, 'Older results');
    this.more.addEventListener('click', () => void this.fetch(false));

    this.element = h(
      'section',
      { class: 'search', testid: 'search', 'aria-labelledby': 'search-heading', hidden: true },
      h('header', { class: 'pane-head' }, h('h1', { id: 'search-heading' }, 'Search'), close),
      h(
        'div',
        { class: 'search-body' },
        h('label', { class: 'visually-hidden', for: 'search-input' }, 'Search messages'),
        this.input,
        this.scopeLine,
        this.status,
        this.list,
        h('div', { class: 'actions start' }, this.more),
      ),
    );
    this.idle();
  }

  get isOpen(): boolean {
    return !this.element.hidden;
  }

  /** Shows the pane, offering to search `room` alone when one is open. */
  open(room: RoomState | null): void {
    this.room = room;
    this.scopeLine.hidden = room === null;
    if (room === null) this.scope.checked = false;
    else setText(this.scopeLabel, room.kind === 'dm' ? `Only with ${roomTitle(room)}` : `Only in ${roomTitle(room)}`);
    this.element.hidden = false;
    this.input.focus();
    this.input.select();
  }

  close(): void {
    this.element.hidden = true;
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
  }

  private idle(): void {
    setText(this.status, 'Type words to find (every one must be in the message); end one with * to match its start.');
  }

  private typed(): void {
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => {
      this.timer = null;
      this.run();
    }, TYPING_PAUSE_MS);
  }

  /** Searches for what is in the field now, from the newest message. */
  private run(): void {
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    const query = this.input.value.trim();
    this.sequence += 1;
    this.list.replaceChildren();
    this.more.hidden = true;
    this.oldest = null;
    if (query === '') {
      this.asked = null;
      this.idle();
      return;
    }
    this.asked = { query, room: this.scope.checked && this.room !== null ? this.room.id : null };
    void this.fetch(true);
  }

  /** Asks for the first page of the current search, or (`first` false) the page after the last. */
  private async fetch(first: boolean): Promise<void> {
    const asked = this.asked;
    if (asked === null) return;
    const sequence = first ? this.sequence : ++this.sequence;
    setText(this.status, 'Searching…');
    this.more.disabled = true;
    let results: SearchResults;
    try {
      results = await commands.search(asked.query, asked.room, first ? null : this.oldest);
    } catch (err) {
      if (sequence !== this.sequence) return;
      this.status.setAttribute('data-error', '');
      setText(this.status, toAppError(err).message);
      this.more.disabled = false;
      return;
    } finally {
      if (sequence === this.sequence) this.more.disabled = false;
    }
    if (sequence !== this.sequence) return;
    this.status.removeAttribute('data-error');
    for (const hit of results.hits) this.list.appendChild(this.hitRow(hit));
    const last = results.hits[results.hits.length - 1];
    if (last !== undefined) this.oldest = last.message.id;
    this.more.hidden = !results.has_more;
    const shown = this.list.childElementCount;
    const counted =
      shown === 0 ? 'No messages match.' : `${shown}${results.has_more ? '+' : ''} message${shown === 1 ? '' : 's'} found.`;
    setText(
      this.status,
      results.cached ? `${counted} Offline: searched only the messages on this device.` : counted,
    );
    this.status.toggleAttribute('data-cached', results.cached);
  }

  private hitRow(hit: SearchHit): HTMLElement {
    const message = hit.message;
    const room = this.hooks.room(message.room);
    const text = h('p', { class: 'search-text' });
    for (const fragment of hit.highlight) {
      text.appendChild(fragment.hit ? h('mark', {}, fragment.text) : document.createTextNode(fragment.text));
    }
    const open = h(
      'button',
      { type: 'button', class: 'search-hit', testid: 'search-hit', 'data-message-id': message.id },
      h(
        'span',
        { class: 'search-hit-head' },
        h('span', { class: 'search-room' }, room === undefined ? 'A room' : roomTitle(room)),
        h('span', { class: 'author' }, message.author.name),
        h('time', { class: 'muted small', title: fullTime(message.sent_at) }, messageTime(message.sent_at)),
      ),
      text,
    );
    open.addEventListener('click', () => this.hooks.open(message));
    return h('li', {}, open);
  }
}
