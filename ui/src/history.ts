// What the UI holds of one room's history: the stored messages it has seen, oldest first and
// without duplicates, followed by the user's own messages still in the outbox. No DOM here.

import type { Attachment, Message, MessageId, Millis, OutboxItem, Quote, Reaction, RoomId, UserRef } from './ipc';

export type RowState =
  /** Stored by the server. */
  | 'stored'
  /** In the outbox, not yet acknowledged. */
  | 'sending'
  /** Acknowledged (`sent`), but its `message` event has not arrived yet. */
  | 'acked'
  /** Refused by the server for good. */
  | 'failed';

/** One row of the message list. */
export interface Row {
  /** Stable across renders: `m<id>` for stored messages, `p<client id>` for outbox ones. */
  key: string;
  /** The message id; null until stored. */
  id: MessageId | null;
  clientId: string | null;
  author: UserRef;
  body: string;
  sentAt: Millis;
  mentions: readonly number[];
  /** When its author last edited it. */
  editedAt: Millis | null;
  /** Deleted: a placeholder without a body. */
  deleted: boolean;
  reactions: readonly Reaction[];
  /** The message it answers, as that one now is. */
  replyTo: Quote | null;
  /** The files it carries. */
  attachments: readonly Attachment[];
  /** Shown as an editor of its body. */
  editing: boolean;
  /** The first message the person had not read when they opened the room: the "New" line
   * goes above it. */
  unreadMark: boolean;
  /** Raised by every change, so the row is drawn again. */
  version: number;
  state: RowState;
  error: string | null;
  /** Follows a message from the same author shortly before: drawn without the author line. */
  compact: boolean;
  /** Lines the body takes at a typical width (0: not counted yet); for the height estimate. */
  lines: number;
  /** The measured height in pixels, valid while `heightEpoch` equals the list's layout epoch. */
  height: number;
  heightEpoch: number;
}

/** Messages closer together than this, by the same author, share one author line. */
const GROUP_MS = 5 * 60 * 1000;

function storedRow(m: Message): Row {
  return {
    key: `m${m.id}`,
    id: m.id,
    clientId: m.client_id ?? null,
    author: m.author,
    body: m.body,
    sentAt: m.sent_at,
    mentions: m.mentions ?? [],
    editedAt: m.edited_at ?? null,
    deleted: m.deleted_at !== undefined,
    reactions: m.reactions ?? [],
    replyTo: m.reply_to ?? null,
    attachments: m.attachments ?? [],
    editing: false,
    unreadMark: false,
    version: 0,
    state: 'stored',
    error: null,
    compact: false,
    lines: 0,
    height: 0,
    heightEpoch: -1,
  };
}

export class RoomHistory {
  readonly room: RoomId;
  /** Stored messages, ascending by id. */
  private stored: Row[] = [];
  private ids = new Set<MessageId>();
  /** Client ids of stored messages, so an outbox entry that was stored is never shown twice. */
  private storedClientIds = new Map<string, MessageId>();
  /** Outbox messages, oldest first. */
  private pending: Row[] = [];
  /** `sent` events that came before the `send` command answered with the client id. */
  private ackedEarly = new Map<string, MessageId>();

  /** Where the "New" line goes (see `setDivider`). */
  private divider: { lastRead: MessageId; me: number } | null = null;
  /** Whether the first page was asked for. */
  started = false;
  /** Whether a history request is in flight. */
  loading = false;
  /** Whether older messages exist before the oldest one held. */
  hasMore = true;
  /** Until when not to ask for older pages again (the last request brought nothing new). */
  olderPausedUntil = 0;

  constructor(room: RoomId) {
    this.room = room;
  }

  get length(): number {
    return this.stored.length + this.pending.length;
  }

  row(index: number): Row | undefined {
    return index < this.stored.length
      ? this.stored[index]
      : this.pending[index - this.stored.length];
  }

  oldestId(): MessageId | null {
    return this.stored[0]?.id ?? null;
  }

  newestId(): MessageId | null {
    return this.stored[this.stored.length - 1]?.id ?? null;
  }

  /** The index of `row`, or -1 if it is no longer in the list. */
  indexOf(row: Row): number {
    if (row.id !== null) {
      let lo = 0;
      let hi = this.stored.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const id = this.stored[mid]?.id ?? 0;
        if (id === row.id) return mid;
        if (id < row.id) lo = mid + 1;
        else hi = mid - 1;
      }
      return -1;
    }
    const i = this.pending.indexOf(row);
    return i < 0 ? -1 : this.stored.length + i;
  }

  /** Merges stored messages in, by id. Returns how many were new. */
  add(messages: readonly Message[]): number {
    const fresh: Row[] = [];
    for (const m of messages) {
      if (m.room !== this.room || this.ids.has(m.id)) continue;
      this.ids.add(m.id);
      fresh.push(storedRow(m));
      if (m.client_id !== undefined) {
        this.storedClientIds.set(m.client_id, m.id);
        this.dropPending(m.client_id);
      }
    }
    if (fresh.length === 0) return 0;
    fresh.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
    const firstNew = fresh[0]?.id ?? 0;
    const lastNew = fresh[fresh.length - 1]?.id ?? 0;
    const first = this.oldestId();
    const last = this.newestId();
    if (last === null || firstNew > last) {
      for (const row of fresh) this.stored.push(row);
    } else if (first !== null && lastNew < first) {
      this.stored = fresh.concat(this.stored);
    } else {
      this.stored = this.stored.concat(fresh);
      this.stored.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
    }
    return fresh.length;
  }

  /** A held message as a change left it (edited, deleted, reactions); false when not held. */
  change(m: Message): boolean {
    const row = this.storedRow(m.id);
    if (row === undefined) return false;
    row.body = m.body;
    row.mentions = m.mentions ?? [];
    row.editedAt = m.edited_at ?? null;
    row.deleted = m.deleted_at !== undefined;
    row.reactions = m.reactions ?? [];
    row.attachments = m.attachments ?? [];
    if (row.deleted) row.editing = false;
    this.touched(row);
    return true;
  }

  /** The replies held to `m` quote it as it now is; returns whether any did. */
  requote(m: Message): boolean {
    let any = false;
    for (const row of this.stored) {
      if (row.replyTo?.id !== m.id) continue;
      row.replyTo = { id: m.id, author: m.author, preview: m.body, deleted: m.deleted_at !== undefined };
      this.touched(row);
      any = true;
    }
    return any;
  }

  /** The held row of message `id`. */
  rowOf(id: MessageId): Row | undefined {
    return this.storedRow(id);
  }

  /** Shows (or stops showing) a held message as an editor; false when not held. */
  setEditing(id: MessageId, editing: boolean): boolean {
    const row = this.storedRow(id);
    if (row === undefined || row.editing === editing) return false;
    row.editing = editing;
    this.touched(row);
    return true;
  }

  /** The stored row of message `id`, found by bisection (the rows ascend by id). */
  private storedRow(id: MessageId): Row | undefined {
    if (!this.ids.has(id)) return undefined;
    let lo = 0;
    let hi = this.stored.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.stored[mid]?.id ?? 0) < id) lo = mid + 1;
      else hi = mid;
    }
    const row = this.stored[lo];
    return row?.id === id ? row : undefined;
  }

  /** A row whose content changed: drawn again, and measured again. */
  private touched(row: Row): void {
    row.version += 1;
    row.lines = 0;
    row.heightEpoch = -1;
  }

  /** Shows an outbox message as "sending…" (unless it was stored meanwhile). */
  addPending(item: OutboxItem, author: UserRef): void {
    if (item.room !== this.room || this.storedClientIds.has(item.client_id)) return;
    if (this.pending.some((row) => row.clientId === item.client_id)) return;
    const early = this.ackedEarly.get(item.client_id);
    this.ackedEarly.delete(item.client_id);
    if (early !== undefined && this.ids.has(early)) return;
    this.pending.push({
      key: `p${item.client_id}`,
      id: null,
      clientId: item.client_id,
      author,
      body: item.body,
      sentAt: item.created_at,
      mentions: [],
      editedAt: null,
      deleted: false,
      reactions: [],
      replyTo: null,
      // An outbox written before attachments existed has none.
      attachments: item.attachments ?? [],
      editing: false,
      unreadMark: false,
      version: 0,
      state: early === undefined ? 'sending' : 'acked',
      error: null,
      compact: false,
      lines: 0,
      height: 0,
      heightEpoch: -1,
    });
  }

  /** The server stored an outbox message. Returns whether the list changed. */
  acked(clientId: string, messageId: MessageId): boolean {
    const row = this.pending.find((r) => r.clientId === clientId);
    if (row === undefined) {
      if (!this.ids.has(messageId)) this.ackedEarly.set(clientId, messageId);
      return false;
    }
    if (this.ids.has(messageId)) return this.dropPending(clientId);
    row.state = 'acked';
    return true;
  }

  /** The server refused an outbox message. Returns whether the list changed. */
  failed(clientId: string, error: string): boolean {
    const row = this.pending.find((r) => r.clientId === clientId);
    if (row === undefined) return false;
    row.state = 'failed';
    row.error = error;
    return true;
  }

  /** Removes an outbox row (stored meanwhile, or a failed one the user dismissed). */
  dropPending(clientId: string): boolean {
    const before = this.pending.length;
    this.pending = this.pending.filter((r) => r.clientId !== clientId);
    return this.pending.length !== before;
  }

  /** Unread messages after `lastRead` by others, if the history held covers them all. */
  unreadAfter(lastRead: MessageId, me: number): { unread: number; mentions: number } | null {
    const oldest = this.oldestId();
    if (this.hasMore && (oldest === null || oldest > lastRead)) return null;
    let unread = 0;
    let mentions = 0;
    for (let i = this.stored.length - 1; i >= 0; i--) {
      const row = this.stored[i];
      if (row === undefined || (row.id ?? 0) <= lastRead) break;
      if (row.author.id === me) continue;
      unread++;
      if (row.mentions.includes(me)) mentions++;
    }
    return { unread, mentions };
  }

  /** Recomputes which rows continue the previous author's group; true if any changed. */
  /** Marks where unread messages start: the first one after `lastRead` not by `me` (none when
   * `lastRead` is null). Kept while the room stays open; applied by `regroup`. */
  setDivider(lastRead: MessageId | null, me: number): void {
    this.divider = lastRead === null ? null : { lastRead, me };
  }

  regroup(): boolean {
    let changed = false;
    let prev: Row | undefined;
    let marked = false;
    const n = this.length;
    for (let i = 0; i < n; i++) {
      const row = this.row(i);
      if (row === undefined) continue;
      const divider = this.divider;
      const mark =
        !marked &&
        divider !== null &&
        row.id !== null &&
        row.id > divider.lastRead &&
        row.author.id !== divider.me;
      if (mark) marked = true;
      if (mark !== row.unreadMark) {
        row.unreadMark = mark;
        this.touched(row);
        changed = true;
      }
      const compact =
        prev !== undefined &&
        prev.author.id === row.author.id &&
        row.sentAt - prev.sentAt < GROUP_MS &&
        row.sentAt >= prev.sentAt;
      if (compact !== row.compact) {
        row.compact = compact;
        row.heightEpoch = -1;
        changed = true;
      }
      prev = row;
    }
    return changed;
  }
}
