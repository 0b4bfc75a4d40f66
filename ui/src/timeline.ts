// The message view of the open room, virtualized: only the rows under the viewport (plus a few
// above and below) exist in the DOM, so a room of 100,000 messages costs a few dozen elements.
//
// Layout inside the scroll container:
//   header   "Beginning of #room" / "Loading earlier messages…" (its own height, measured)
//   content  as tall as all rows together (sum of measured or estimated heights)
//     rows   absolutely placed at the top of the first rendered row; its children flow
//
// Heights are estimated until a row is first drawn, then measured. Whenever heights or rows
// change, the scroll position is restored from an anchor (the row at the top of the viewport and
// how far into it the viewport starts), or kept at the bottom when the person was at the bottom.
// Prepending an older page is just such a change, so the view does not jump.

import { attachmentsHeight } from './attachments';
import { h, setText } from './dom';
import type { RoomHistory, Row } from './history';
import type { RoomId } from './ipc';
import { renderRow, rowLook, type RowActions } from './message';

/** How far below the top a revealed message shows. */
const REVEAL_MARGIN_PX = 80;
/** How long a revealed message stays marked. */
const HIGHLIGHT_MS = 2000;
import { anchorAt, prefixOffsets, scrollTopFor, visibleRange } from './virtual';

/** Rows drawn beyond each edge of the viewport. */
const OVERSCAN = 8;
/** A hard cap on drawn rows, whatever the viewport's size. */
const MAX_ROWS = 300;
/** Ask for older messages when the viewport's top is this close to the first row. */
const LOAD_OLDER_PX = 800;
/** Within this distance from the bottom, new messages keep the view at the bottom. */
const STICK_PX = 32;

/** A room's view, kept while another room is open. */
interface ViewState {
  stick: boolean;
  anchor: { row: Row; delta: number } | null;
}

export interface TimelineHooks extends RowActions {
  /** The view came near the oldest message held and the room has older ones. */
  needOlder(history: RoomHistory): void;
  /** The view reached the newest message (to mark the room read). */
  atBottom(): void;
}

export class Timeline {
  readonly element: HTMLElement;
  private readonly header: HTMLElement;
  private readonly content: HTMLElement;
  private readonly rowsHost: HTMLElement;
  private readonly jump: HTMLButtonElement;

  private history: RoomHistory | null = null;
  private beginning = '';
  private me = 0;
  private mayDeleteAny = false;
  private offsets: Float64Array = new Float64Array(1);
  /** Rows or heights changed since the offsets were computed. */
  private dirty = true;
  /** Heights measured in an older epoch (another width) are estimates again. */
  private epoch = 0;
  private stick = true;
  private anchor: { row: Row; delta: number } | null = null;
  private drawn = new Map<Row, { el: HTMLElement; look: string }>();
  private views = new Map<RoomId, ViewState>();
  private frame = 0;
  private width = 0;
  private rendering = false;

  constructor(private readonly hooks: TimelineHooks) {
    this.header = h('div', { class: 'timeline-header', 'aria-hidden': 'true' });
    this.rowsHost = h('div', { class: 'timeline-rows', role: 'list' });
    this.content = h('div', { class: 'timeline-content' }, this.rowsHost);
    this.element = h(
      'div',
      {
        class: 'timeline',
        testid: 'timeline',
        tabindex: 0,
        role: 'region',
        'aria-label': 'Messages',
      },
      this.header,
      this.content,
    );
    this.jump = h('button', { type: 'button', class: 'jump', hidden: true }, 'Jump to latest ↓');
    this.jump.addEventListener('click', () => this.scrollToBottom());

    this.element.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => {
      const width = this.element.clientWidth;
      // Hidden (locked, settings open): keep the measurements for when it shows again.
      if (width === 0) return;
      if (width !== this.width) {
        // Wrapping changed: every measured height is now a guess.
        this.width = width;
        this.epoch++;
        this.dirty = true;
      }
      this.render();
    }).observe(this.element);
  }

  /** The "jump to latest" button, placed by the caller over the timeline. */
  get jumpButton(): HTMLButtonElement {
    return this.jump;
  }

  setMe(me: number): void {
    this.me = me;
  }

  /** Whether the user may delete anyone's message (an owner): every row is drawn again. */
  setMayDeleteAny(may: boolean): void {
    if (may === this.mayDeleteAny) return;
    this.mayDeleteAny = may;
    this.clearDrawn();
    this.dirty = true;
    this.schedule();
  }

  /** Shows a room (or nothing), restoring where its view was left. `beginning` is the line
   * above its first message. */
  show(history: RoomHistory | null, beginning: string): void {
    if (this.history !== null) this.views.set(this.history.room, this.saveView());
    this.history = history;
    this.beginning = beginning;
    this.clearDrawn();
    this.dirty = true;
    if (history === null) {
      this.element.removeAttribute('data-room');
      this.offsets = new Float64Array(1);
      this.content.style.height = '0px';
      this.jump.hidden = true;
      this.updateHeader();
      return;
    }
    this.element.setAttribute('data-room', String(history.room));
    const view = this.views.get(history.room);
    this.stick = view?.stick ?? true;
    this.anchor = view?.anchor ?? null;
    this.render();
  }

  /** The open room's rows changed (new, older, sent or failed messages). */
  changed(history: RoomHistory): void {
    if (history !== this.history) return;
    this.dirty = true;
    this.render();
  }

  /** Scrolls the open room so that message `id` shows near the top, and marks it for a moment;
   * false when the room does not hold it. */
  reveal(history: RoomHistory, id: number): boolean {
    if (history !== this.history) return false;
    const row = history.rowOf(id);
    if (row === undefined) return false;
    this.stick = false;
    this.anchor = { row, delta: -REVEAL_MARGIN_PX };
    this.dirty = true;
    this.render();
    const el = this.element.querySelector<HTMLElement>(`[data-testid="message"][data-id="${id}"]`);
    if (el !== null) {
      el.classList.add('highlight');
      window.setTimeout(() => el.classList.remove('highlight'), HIGHLIGHT_MS);
    }
    return true;
  }

  /** The room's name changed (a rename, or a DM peer's name). */
  setBeginning(beginning: string): void {
    this.beginning = beginning;
    this.updateHeader();
  }

  /** Whether the person sees the newest message. */
  isAtBottom(): boolean {
    return this.stick;
  }

  scrollToBottom(): void {
    this.stick = true;
    this.dirty = true;
    this.render();
  }

  /** Remembers the open room's view before the window is hidden (lock). */
  freeze(): void {
    if (this.history !== null) this.views.set(this.history.room, this.saveView());
  }

  /** Puts the open room's view back after the window was hidden. */
  thaw(): void {
    if (this.history === null) return;
    const view = this.views.get(this.history.room);
    if (view !== undefined) {
      this.stick = view.stick;
      this.anchor = view.anchor;
    }
    this.dirty = true;
    this.render();
  }

  private saveView(): ViewState {
    return { stick: this.stick, anchor: this.anchor };
  }

  private schedule(): void {
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.onScrolled();
    });
  }

  /** The person scrolled: the offsets still hold, so the anchor is read from the new position. */
  private onScrolled(): void {
    if (this.history === null || this.element.clientHeight === 0) return;
    if (!this.dirty) {
      const el = this.element;
      this.stick = el.scrollHeight - el.scrollTop - el.clientHeight <= STICK_PX;
      this.captureAnchor();
    }
    this.render();
  }

  /** Where the first row starts inside the scroll container (below the header; lower when
   * there are too few messages to fill the view, which keeps them at the bottom). */
  private rowsTop(): number {
    return this.content.offsetTop;
  }

  private captureAnchor(): void {
    const history = this.history;
    if (history === null || history.length === 0) {
      this.anchor = null;
      return;
    }
    const { index, delta } = anchorAt(this.offsets, this.element.scrollTop - this.rowsTop());
    const row = history.row(index);
    this.anchor = row === undefined ? null : { row, delta };
  }

  /** Recomputes the offsets from the rows' heights (measured, else estimated). */
  private rebuild(history: RoomHistory): void {
    history.regroup();
    const n = history.length;
    const heights = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const row = history.row(i);
      if (row === undefined) continue;
      heights[i] = row.heightEpoch === this.epoch ? row.height : estimate(row);
    }
    this.offsets = prefixOffsets(heights);
    this.content.style.height = `${this.offsets[n] ?? 0}px`;
    this.dirty = false;
  }

  /** Puts the viewport back at the anchor, or at the bottom. */
  private restore(history: RoomHistory): void {
    const el = this.element;
    if (this.stick) {
      el.scrollTop = el.scrollHeight;
      return;
    }
    if (this.anchor === null) return;
    const index = history.indexOf(this.anchor.row);
    if (index < 0) return;
    el.scrollTop = this.rowsTop() + scrollTopFor(this.offsets, { index, delta: this.anchor.delta });
  }

  render(): void {
    const history = this.history;
    if (history === null) return;
    if (this.rendering) return;
    // Hidden (locked, settings open): nothing can be measured; draw when visible again.
    if (this.element.clientHeight === 0) return;
    this.rendering = true;
    try {
      this.updateHeader();
      for (let pass = 0; pass < 4; pass++) {
        if (this.dirty) {
          this.rebuild(history);
          this.restore(history);
        }
        const el = this.element;
        const top = el.scrollTop - this.rowsTop();
        const range = visibleRange(this.offsets, top, el.clientHeight, OVERSCAN);
        if (range.end - range.start > MAX_ROWS) range.end = range.start + MAX_ROWS;
        this.paint(history, range.start, range.end);
        if (!this.measure(history, range.start, range.end)) break;
        this.dirty = true;
      }
      if (this.dirty) {
        this.rebuild(history);
        this.restore(history);
      }
      const el = this.element;
      this.stick = el.scrollHeight - el.scrollTop - el.clientHeight <= STICK_PX;
      this.captureAnchor();
    } finally {
      this.rendering = false;
    }
    this.jump.hidden = this.stick || history.length === 0;
    if (this.stick) this.hooks.atBottom();
    this.maybeLoadOlder(history);
  }

  private maybeLoadOlder(history: RoomHistory): void {
    if (!history.hasMore || history.loading || Date.now() < history.olderPausedUntil) return;
    if (this.element.scrollTop - this.rowsTop() > LOAD_OLDER_PX) return;
    this.hooks.needOlder(history);
  }

  /** Makes the DOM hold exactly rows [start, end), reusing elements that did not change. */
  private paint(history: RoomHistory, start: number, end: number): void {
    const wanted: HTMLElement[] = [];
    const keep = new Set<Row>();
    for (let i = start; i < end; i++) {
      const row = history.row(i);
      if (row === undefined) continue;
      keep.add(row);
      const look = rowLook(row);
      let entry = this.drawn.get(row);
      if (entry === undefined || entry.look !== look) {
        entry?.el.remove();
        entry = { el: renderRow(row, this.me, this.hooks, this.mayDeleteAny), look };
        this.drawn.set(row, entry);
      }
      wanted.push(entry.el);
    }
    for (const [row, entry] of this.drawn) {
      if (!keep.has(row)) {
        entry.el.remove();
        this.drawn.delete(row);
      }
    }
    // Insert in order without detaching rows that stay (a focused link keeps its focus).
    let cursor: ChildNode | null = this.rowsHost.firstChild;
    for (const el of wanted) {
      if (el === cursor) {
        cursor = cursor.nextSibling;
      } else {
        this.rowsHost.insertBefore(el, cursor);
      }
    }
    this.rowsHost.style.top = `${this.offsets[start] ?? 0}px`;
  }

  /** Reads the drawn rows' heights; true if any differs from what the offsets assumed. */
  private measure(history: RoomHistory, start: number, end: number): boolean {
    let changed = false;
    for (let i = start; i < end; i++) {
      const row = history.row(i);
      if (row === undefined) continue;
      const el = this.drawn.get(row)?.el;
      if (el === undefined) continue;
      const height = el.getBoundingClientRect().height;
      if (height <= 0) continue;
      const assumed = (this.offsets[i + 1] ?? 0) - (this.offsets[i] ?? 0);
      row.height = height;
      row.heightEpoch = this.epoch;
      if (Math.abs(height - assumed) > 0.5) changed = true;
    }
    return changed;
  }

  private clearDrawn(): void {
    for (const { el } of this.drawn.values()) el.remove();
    this.drawn.clear();
  }

  private updateHeader(): void {
    const history = this.history;
    if (history === null) {
      setText(this.header, '');
      return;
    }
    if (history.hasMore) {
      setText(this.header, history.loading ? 'Loading earlier messages…' : '');
    } else {
      setText(this.header, this.beginning);
    }
  }
}

/** A guess at a row's height before it is drawn: the author line, and one line per ~80 chars. */
function estimate(row: Row): number {
  if (row.lines === 0) {
    let lines = 1;
    let run = 0;
    for (let i = 0; i < row.body.length; i++) {
      if (row.body.charCodeAt(i) === 10) {
        lines++;
        run = 0;
      } else if (++run > 80) {
        lines++;
        run = 0;
      }
    }
    row.lines = lines;
  }
  const status = row.state === 'stored' || row.state === 'acked' ? 0 : 18;
  return (row.compact ? 6 : 30) + row.lines * 21 + status + attachmentsHeight(row.attachments);
}
