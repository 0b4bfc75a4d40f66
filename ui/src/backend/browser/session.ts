// The chat channel in the browser, for one logged-in user: keeps a link open (reconnecting with
// jittered backoff), syncs from the cursor after every connect, sends the outbox until acked,
// turns frames into the UI's events, raises Web Notifications, and locks when the session ends.
// The same loop as the client core's (`crates/client/src/chat.rs`), over the browser's APIs.
//
// The ladder: WebSocket → SSE (+ POST) → streaming `fetch` (the iframe where `fetch` cannot
// stream) → long-polling → short polling. A rung that does not say hello within
// `HELLO_TIMEOUT_MS`, while the server answers plain HTTP, sends the client one rung down; below
// the top it tries the rungs above every `PROBE_EVERY_MS` and climbs back when one works. A
// pinned transport is the whole ladder. On the WebSocket the session feed (SSE, `/api/events`)
// is open beside it, as in the desktop app; on the HTTP rungs the channel carries the session's
// status and lock itself.

import type {
  ClientFrame,
  ConnState,
  LockCause,
  Message,
  OutboxItem,
  RoomState,
  ServerFrame,
  SessionStatus,
  TransportKind,
  Transports,
  UserRef,
} from '../../ipc';
import type { Alerts } from './alerts';
import type { Emitter } from './emitter';
import { ApiFailure, call } from './http';
import { type Ended, type Link, fetchStreams, open } from './links';
import type { Outbox } from './outbox';
import { Policy, preview } from './policy';
import type { Prefs } from './prefs';
import { FEED_PATH, TRANSPORTS_PATH } from './wire';

/** A rung that has not said hello by then does not work here. */
const HELLO_TIMEOUT_MS = 10_000;
/** How often a client below the top rung tries the rungs above. */
const PROBE_EVERY_MS = 60_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
/** Wait before resending after a transient refusal without a hint. */
const TRANSIENT_RETRY_MS = 1000;
/** Message ids a notification was considered for, kept so a replay does not raise it again. */
const NOTIFIED_KEEP = 2000;

/** The `send` frame of an outbox message (the same each time it is offered). */
function sendFrame(item: OutboxItem): ClientFrame {
  const frame: ClientFrame = { type: 'send', room: item.room, client_id: item.client_id, body: item.body };
  if (item.reply_to !== undefined) frame.reply_to = item.reply_to;
  // An outbox written before attachments existed has none.
  const carried = item.attachments ?? [];
  if (carried.length > 0) frame.attachments = carried.map((a) => a.id);
  return frame;
}

/** Refusals worth trying again; any other refusal of a send is final. */
const TRANSIENT = new Set(['rate_limited', 'overloaded', 'storage', 'internal']);

export class Session {
  state: ConnState = { state: 'connecting' };
  /** Every message of the user's rooms up to here has reached this page; null before the first hello. */
  private cursor: number | null = null;
  /** On the WebSocket, false from a hello until the sync after it is complete. */
  private synced = true;
  private link: Link | null = null;
  private feed: EventSource | null = null;
  private running = false;
  private locked = false;
  private rung = 0;
  private attempt = 0;
  /** Wakes the loop early: the network is back, the transport was changed, a probe succeeded. */
  private wake: (() => void) | null = null;
  private probeTimer: number | null = null;
  private readonly rooms = new Map<number, RoomState>();
  private readonly notified = new Set<number>();
  readonly policy: Policy;

  constructor(
    readonly user: UserRef,
    private readonly events: Emitter,
    private readonly outbox: Outbox,
    readonly prefs: Prefs,
    private readonly alerts: Alerts,
  ) {
    this.policy = new Policy(user.id);
    this.policy.setDnd(prefs.dnd());
    for (const [room, level] of prefs.levels()) this.policy.setRoomLevel(room, level);
    // The network is back: retry now rather than when the backoff says.
    window.addEventListener('online', () => {
      if (this.state.state === 'offline') this.wake?.();
    });
  }

  get isLocked(): boolean {
    return this.locked;
  }

  /** Starts (or, after an unlock, restarts) the loop. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.locked = false;
    void this.run();
  }

  /** The transport pin changed: reconnect now, from the top of the new ladder. */
  restart(): void {
    this.rung = 0;
    this.climb(0);
  }

  /** Ends the connection in hand (or the wait for the next) and goes on at `rung`. */
  private climb(rung: number): void {
    this.pendingClimb = rung;
    this.wake?.();
    this.pendingClimb = null;
  }

  /** Covers the app: every connection closes; history, drafts and the outbox stay. */
  lock(cause: LockCause): void {
    if (this.locked) return;
    this.locked = true;
    this.running = false;
    this.closeLink();
    this.wake?.();
    this.setState({ state: 'locked' });
    this.events.emit('locked', { cause });
  }

  unlocked(): void {
    this.events.emit('unlocked', null);
    this.start();
  }

  knownRooms(rooms: RoomState[]): void {
    for (const room of rooms) this.rooms.set(room.id, room);
  }

  /** Sends over the open link; false when there is none (the frame waits for a reconnect). */
  sendFrame(frame: ClientFrame): boolean {
    if (this.link === null || this.state.state !== 'online') return false;
    this.link.send(frame);
    return true;
  }

  outboxItems(): Promise<OutboxItem[]> {
    return this.outbox.list();
  }

  async send(item: OutboxItem): Promise<void> {
    await this.outbox.add(item);
    this.sendFrame(sendFrame(item));
  }

  // ---- the loop ----

  private async run(): Promise<void> {
    while (this.running) {
      const offer = await this.offer();
      if (!this.running) return;
      const ladder = this.ladder(offer);
      this.rung = Math.min(this.rung, ladder.length - 1);
      const kind = ladder[this.rung] ?? 'web_socket';
      if (this.state.state !== 'online') this.setState({ state: 'connecting' });
      const result = await this.connect(kind, offer, ladder);
      if (!this.running) return;
      if (result.ended.how === 'locked') {
        this.lock(result.ended.cause);
        return;
      }
      if (result.climb !== null) {
        this.rung = result.climb;
        continue;
      }
      if (result.online) this.attempt = 0;
      // Move down only when the server answers: a server that is down breaks every rung.
      if (!result.online && this.rung + 1 < ladder.length) {
        const alive = await this.alive();
        if (!this.running) return;
        if (alive) {
          this.rung += 1;
          continue;
        }
      }
      await this.backoff();
    }
  }

  /** What the server offers; when it cannot say, every transport (the WebSocket first). */
  private async offer(): Promise<Transports> {
    try {
      return await call<Transports>('GET', TRANSPORTS_PATH, { timeoutMs: 5000 });
    } catch {
      return {
        transports: ['web_socket', 'sse', 'streaming', 'iframe', 'long_polling', 'short_polling'],
        poll_timeout_ms: 25_000,
        max_poll_timeout_ms: 60_000,
        short_poll_interval_ms: 2000,
        heartbeat_ms: 15_000,
        stream_max_bytes: 1 << 20,
        presence_grace_ms: 10_000,
      };
    }
  }

  private ladder(offer: Transports): TransportKind[] {
    const pinned = this.prefs.transport();
    if (pinned !== null) return [pinned];
    const streaming: TransportKind = fetchStreams() ? 'streaming' : 'iframe';
    const ladder: TransportKind[] = ['web_socket', 'sse', streaming, 'long_polling', 'short_polling'];
    const offered = ladder.filter((kind) => offer.transports.includes(kind));
    return offered.length > 0 ? offered : ['long_polling'];
  }

  /** Whether the server answers, as this user (a 401 locks through the request itself). */
  private async alive(): Promise<boolean> {
    try {
      await call('GET', '/api/me', { timeoutMs: 5000 });
      return true;
    } catch (err) {
      return err instanceof ApiFailure && err.status !== 0 && err.status !== 401;
    }
  }

  private backoff(): Promise<void> {
    this.attempt += 1;
    const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.attempt, 10));
    const wait = cap / 2 + Math.random() * (cap / 2);
    this.setState({ state: 'offline', retry_at: Date.now() + wait, attempt: this.attempt });
    return this.sleep(wait);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = window.setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        window.clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  /** One connection over `kind`, until it ends (or a better rung works). */
  private connect(
    kind: TransportKind,
    offer: Transports,
    ladder: TransportKind[],
  ): Promise<{ ended: Ended; online: boolean; climb: number | null }> {
    return new Promise((resolve) => {
      let online = false;
      let finished = false;
      const finish = (ended: Ended, climb: number | null = null): void => {
        if (finished) return;
        finished = true;
        window.clearTimeout(helloTimer);
        this.stopProbing();
        if (this.link === link) this.closeLink();
        this.wake = null;
        resolve({ ended, online, climb });
      };
      const helloTimer = window.setTimeout(() => finish({ how: 'broken' }), HELLO_TIMEOUT_MS);
      const link = open(kind, this.cursor ?? 0, offer, {
        frames: (frames, cursor) => {
          for (const frame of frames) {
            if (frame.type === 'hello') {
              window.clearTimeout(helloTimer);
              online = true;
              this.onHello(frame, link, ladder);
            } else {
              this.onFrame(frame);
            }
          }
          if (cursor !== null && (this.cursor === null || cursor > this.cursor)) this.cursor = cursor;
        },
        ended: (ended) => finish(ended),
      });
      this.link = link;
      // Woken while connected: the transport was changed or a probe found a better rung.
      this.wake = () => finish({ how: 'broken' }, this.pendingClimb);
    });
  }

  private pendingClimb: number | null = null;

  private onHello(hello: Extract<ServerFrame, { type: 'hello' }>, link: Link, ladder: TransportKind[]): void {
    if (this.cursor === null) this.cursor = hello.latest_id;
    this.knownRooms(hello.rooms);
    this.events.emit('rooms', hello.rooms);
    this.events.emit('online', hello.online ?? []);
    if (link.kind === 'web_socket') {
      this.synced = false;
      link.send({ type: 'sync', since: this.cursor });
      this.openFeed();
    } else {
      this.synced = true;
    }
    this.setState({ state: 'online', transport: link.kind });
    this.attempt = 0;
    void this.resend();
    const rung = ladder.indexOf(link.kind);
    if (rung > 0 && ladder.length > 1) this.startProbing(ladder.slice(0, rung));
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'message': {
        const { type: _type, ...message } = frame;
        if (this.synced && this.link?.kind === 'web_socket' && (this.cursor === null || message.id > this.cursor)) {
          this.cursor = message.id;
        }
        this.events.emit('message', message);
        this.alert(message);
        break;
      }
      case 'changed':
        if (this.synced && this.link?.kind === 'web_socket' && (this.cursor === null || frame.id > this.cursor)) {
          this.cursor = frame.id;
        }
        this.events.emit('changed', frame.message);
        if (frame.message.deleted_at !== undefined) this.alerts.retract(frame.message.id);
        break;
      case 'ack':
        void this.outbox
          .remove(frame.client_id)
          .catch(() => undefined)
          .then(() => this.events.emit('sent', { client_id: frame.client_id, room: frame.room, message_id: frame.id }));
        break;
      case 'error':
        if (frame.client_id !== undefined) void this.refused(frame.client_id, frame);
        else console.warn('the server refused a frame', frame.code, frame.message);
        break;
      case 'synced':
        if (this.cursor === null || frame.latest_id > this.cursor) this.cursor = frame.latest_id;
        if (frame.has_more) this.sendFrame({ type: 'sync', since: this.cursor });
        else this.synced = true;
        break;
      case 'typing':
        if (frame.user.id !== this.user.id) this.events.emit('typing', { room: frame.room, user: frame.user });
        break;
      case 'presence':
        this.events.emit('presence', { user: frame.user, status: frame.status });
        break;
      case 'read':
        if (frame.user === this.user.id) this.events.emit('read', { room: frame.room, message_id: frame.message_id });
        break;
      case 'session': {
        const { type: _type, ...status } = frame;
        this.onStatus(status);
        break;
      }
      case 'lock':
        this.lock(frame.reason);
        break;
      case 'history':
      case 'hello':
        break;
    }
  }

  private onStatus(status: SessionStatus): void {
    this.events.emit('session', status);
    if (status.state === 'expired' || status.state === 'revoked') this.lock(status.state);
  }

  /** A send the server refused: try again later, or give it up and say so. */
  private async refused(clientId: string, error: Extract<ServerFrame, { type: 'error' }>): Promise<void> {
    const item = (await this.outbox.list()).find((i) => i.client_id === clientId);
    if (item === undefined) return;
    if (TRANSIENT.has(error.code)) {
      const wait = error.retry_after_ms ?? TRANSIENT_RETRY_MS;
      window.setTimeout(() => {
        this.sendFrame(sendFrame(item));
      }, wait);
      return;
    }
    await this.outbox.remove(clientId).catch(() => undefined);
    const { type: _type, ...body } = error;
    this.events.emit('send_failed', { client_id: clientId, room: item.room, error: body });
  }

  /** Sends every waiting message again, under its client id (stored at most once). */
  private async resend(): Promise<void> {
    let items: OutboxItem[];
    try {
      items = await this.outbox.list();
    } catch {
      return;
    }
    for (const item of items) {
      this.sendFrame(sendFrame(item));
    }
  }

  private alert(message: Message): void {
    if (this.notified.has(message.id)) return;
    this.notified.add(message.id);
    if (this.notified.size > NOTIFIED_KEEP) {
      const oldest = this.notified.values().next().value;
      if (oldest !== undefined) this.notified.delete(oldest);
    }
    const room = this.rooms.get(message.room);
    if (room === undefined) {
      // A room this page has not heard of yet (a new DM): learn it for the label.
      void call<RoomState[]>('GET', '/api/rooms')
        .then((rooms) => this.knownRooms(rooms))
        .catch(() => undefined);
    }
    const label =
      room === undefined ? 'a new conversation' : room.kind === 'group' ? `#${room.name ?? room.id}` : (room.dm_peer?.name ?? 'a conversation');
    const notice = this.policy.onAlert(
      {
        room: message.room,
        id: message.id,
        author: message.author,
        preview: preview(message.body),
        sent_at: message.sent_at,
        mentions_you: message.mentions?.includes(this.user.id) === true,
      },
      label,
      Date.now(),
    );
    if (notice !== null) this.alerts.show(notice);
  }

  // ---- the feed beside the WebSocket ----

  private openFeed(): void {
    if (this.feed !== null) return;
    const feed = new EventSource(FEED_PATH);
    feed.addEventListener('session', (event: MessageEvent<string>) => {
      try {
        this.onStatus(JSON.parse(event.data) as SessionStatus);
      } catch {
        // A status that does not parse changes nothing.
      }
    });
    feed.addEventListener('lock', (event: MessageEvent<string>) => {
      try {
        const { reason } = JSON.parse(event.data) as { reason: LockCause };
        this.lock(reason === 'expired' ? 'expired' : 'revoked');
      } catch {
        this.lock('revoked');
      }
    });
    this.feed = feed;
  }

  private closeLink(): void {
    this.link?.close();
    this.link = null;
    this.feed?.close();
    this.feed = null;
    this.synced = true;
  }

  // ---- climbing back ----

  private startProbing(better: TransportKind[]): void {
    this.stopProbing();
    this.probeTimer = window.setTimeout(() => void this.probe(better), PROBE_EVERY_MS);
  }

  private stopProbing(): void {
    if (this.probeTimer !== null) window.clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  /** Opens each better rung on the side; the first that says hello is climbed to. */
  private async probe(better: TransportKind[]): Promise<void> {
    const offer = await this.offer();
    for (const [index, kind] of better.entries()) {
      if (!this.running || this.link === null) return;
      const works = await new Promise<boolean>((resolve) => {
        const timer = window.setTimeout(() => done(false), HELLO_TIMEOUT_MS);
        const done = (ok: boolean): void => {
          window.clearTimeout(timer);
          trial.close();
          resolve(ok);
        };
        const trial = open(kind, this.cursor ?? 0, offer, {
          frames: (frames) => {
            if (frames.some((f) => f.type === 'hello')) done(true);
          },
          ended: () => done(false),
        });
      });
      if (works) {
        this.climb(index);
        return;
      }
    }
    if (this.running && this.link !== null) this.startProbing(better);
  }

  private setState(state: ConnState): void {
    this.state = state;
    this.events.emit('state', state);
  }
}
