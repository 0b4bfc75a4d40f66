// The UI's one way out: the contract every backend keeps (`Commands`, and events by name in
// `EventMap`) and the backend in use — the desktop app's (`backend/tauri.ts`, the only place that
// calls Tauri) inside the app's webview, the browser's (`backend/browser/`, which talks to the
// server that served the page) anywhere else. Wire shapes are the protocol's JSON (ids are
// numbers, times are unix ms).

import { browser } from './backend/browser';
import { tauri } from './backend/tauri';

import type {
  AdminOverview,
  Attachment,
  CreatedInvite,
  HistoryPage,
  Me,
  MemberAction,
  MemberManaged,
  Message,
  Room,
  RoomState,
  SearchResults,
  SessionInfo,
  SessionStatus,
  TransportKind,
  UserRef,
} from './generated/protocol';
import type {
  AccountView,
  AppStatus,
  CommandError,
  ConnectionState,
  Hosted,
  InviteCode,
  NotifyLevel,
  Pending,
  Queued,
  UiEvent,
} from './generated/desktop';

// The protocol's own types and the desktop contract's, generated from the Rust ones.
export type * from './generated/protocol';
export type * from './generated/desktop';

export type UserId = number;
export type RoomId = number;
export type MessageId = number;
export type SessionId = number;
/** Milliseconds since the Unix epoch. */
export type Millis = number;

export type ConnState = ConnectionState;
export type Account = AccountView;
/** A message waiting in the outbox for the server's ack. */
export type OutboxItem = Pending;
/** What a command rejects with. Match on `code`; `message` is for people. */
export type AppError = CommandError;
/** The session feed's status, as the shell passes it on. */
export type SessionEvent = SessionStatus;

/** Every event the shell emits, by name, with its payload. */
export type EventMap = { [E in UiEvent as E['name']]: E['payload'] };

/** Turns whatever a rejected command gave into an `AppError`. */
export function toAppError(err: unknown): AppError {
  if (typeof err === 'object' && err !== null) {
    const rec = err as Record<string, unknown>;
    const code = typeof rec['code'] === 'string' ? rec['code'] : 'internal';
    const message =
      typeof rec['message'] === 'string' && rec['message'] !== '' ? rec['message'] : code;
    const fingerprint = typeof rec['fingerprint'] === 'string' ? rec['fingerprint'] : undefined;
    return fingerprint === undefined ? { code, message } : { code, message, fingerprint };
  }
  if (typeof err === 'string' && err !== '') {
    return { code: 'internal', message: err };
  }
  return { code: 'internal', message: 'Something went wrong.' };
}

/** Everything the UI asks of its backend (the Tauri shell, or the server directly in a browser). */
export interface Commands {
  status(): Promise<AppStatus>;
  hostGroup(owner: string, password: string, lan: boolean): Promise<Hosted>;
  joinServer(url: string, name: string, password: string, invite: string | null): Promise<UserRef>;
  /** Whether the app starts (in the tray) when the user logs in. Desktop only. */
  autostart(): Promise<boolean>;
  setAutostart(on: boolean): Promise<void>;
  /** Quits the app (and the group's server it hosts). Desktop only. */
  quit(): Promise<void>;
  /**
   * Trusts a server's certificate by its SHA-256 fingerprint (after an `untrusted_certificate`
   * error the user compared it for). A browser checks certificates itself: it never calls this.
   */
  trustCertificate(url: string, fingerprint: string): Promise<void>;
  rooms(): Promise<RoomState[]>;
  /** Streams pages (the cached page first, then the server's); resolves when done. */
  history(
    room: RoomId,
    before: MessageId | null,
    limit: number,
    onPage: (page: HistoryPage) => void,
  ): Promise<null>;
  /** Sends `body` to `room`, as a reply to message `replyTo` of that room when given, carrying
   * `attachments` (uploaded with `upload`). */
  send(room: RoomId, body: string, replyTo: MessageId | null, attachments: Attachment[]): Promise<Queued>;
  /** Uploads `file` to `room` for a message to carry, reporting how far it has gone. `upload`
   * names it for `cancelUpload`, which makes this reject with code `cancelled`. */
  upload(room: RoomId, file: File, upload: string, onProgress: (sent: number, total: number) => void): Promise<Attachment>;
  cancelUpload(upload: string): Promise<null>;
  /** A URL an `<img>` (or a download link) can load the attachment, or its thumbnail, from. */
  attachmentUrl(attachment: Attachment, thumbnail: boolean): Promise<string>;
  outbox(): Promise<OutboxItem[]>;
  markRead(room: RoomId, messageId: MessageId): Promise<null>;
  /** One's own message gets a new body; the answer is the message as it now is. */
  editMessage(message: MessageId, body: string): Promise<Message>;
  /** Deletes a message (one's own; an owner, anyone's). */
  deleteMessage(message: MessageId): Promise<Message>;
  /** Adds (`on`) or takes back the user's reaction. */
  react(message: MessageId, emoji: string, on: boolean): Promise<Message>;
  /** Messages of the user's rooms (or `room`) with every word typed, newest first, older than
   * `before` when set. The desktop answers from its own copy when the server cannot be asked
   * (`cached`). */
  search(query: string, room: RoomId | null, before: MessageId | null): Promise<SearchResults>;
  typing(room: RoomId): Promise<null>;
  setDraft(room: RoomId, text: string): Promise<null>;
  draft(room: RoomId): Promise<string | null>;
  setFocusedRoom(room: RoomId | null): Promise<null>;
  createRoom(name: string): Promise<RoomState>;
  openDm(user: string): Promise<RoomState>;
  joinRoom(room: RoomId): Promise<RoomState>;
  directory(): Promise<Room[]>;
  users(): Promise<UserRef[]>;
  /** The members of a room the user is in (for `@` completion). */
  members(room: RoomId): Promise<UserRef[]>;
  invite(): Promise<InviteCode>;
  /** The user as the server now has them, their role included. */
  me(): Promise<Me>;
  /** The group as its owners manage it; refused (`forbidden`) to members. */
  admin(): Promise<AdminOverview>;
  manageMember(user: UserId, action: MemberAction): Promise<MemberManaged>;
  /** A new invite: `expiresInHours` null lasts until revoked. Its code is shown this once. */
  createInvite(expiresInHours: number | null, maxUses: number): Promise<CreatedInvite>;
  revokeInvite(invite: number): Promise<null>;
  lockNow(): Promise<null>;
  unlock(password: string): Promise<null>;
  sessions(): Promise<SessionInfo[]>;
  revoke(session: SessionId): Promise<null>;
  setRoomLevel(room: RoomId, level: NotifyLevel | null): Promise<null>;
  roomLevel(room: RoomId): Promise<NotifyLevel | null>;
  setDnd(on: boolean): Promise<null>;
  transport(): Promise<TransportKind | null>;
  setTransport(transport: TransportKind | null): Promise<null>;
  openLink(url: string): Promise<null>;
}

/** Ends a subscription made with `on`. */
export type Unsubscribe = () => void;

/** Whether the browser may show notifications: `unsupported` on a page that is not secure. */
export type AlertPermission = 'default' | 'granted' | 'denied' | 'unsupported';

/** A browser's notification permission (the desktop app needs none). */
export interface AlertControl {
  permission(): AlertPermission;
  /** Asks the user; call only from something they did. */
  ask(): Promise<AlertPermission>;
}

/** A backend: the commands, and the events it emits by name (see `EventMap`). */
export interface Backend {
  /** The desktop app hosts groups and has a tray; a browser does neither. */
  kind: 'desktop' | 'browser';
  commands: Commands;
  /** Subscribes to one event; resolves once the subscription is in place. */
  on<K extends keyof EventMap>(name: K, handler: (payload: EventMap[K]) => void): Promise<Unsubscribe>;
  alerts?: AlertControl;
}

/** Inside the desktop app's webview, Tauri has injected its bridge before any script runs. */
const backend: Backend = '__TAURI_INTERNALS__' in window ? tauri : browser;

export const platform: Backend['kind'] = backend.kind;
export const alerts: AlertControl | null = backend.alerts ?? null;

export const commands: Commands = backend.commands;

/** Subscribes to one backend event; resolves once the subscription is in place. */
export function on<K extends keyof EventMap>(
  name: K,
  handler: (payload: EventMap[K]) => void,
): Promise<Unsubscribe> {
  return backend.on(name, handler);
}
