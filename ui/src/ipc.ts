// The only way the UI talks to the Rust shell: one typed wrapper per command and per event of the
// desktop contract. Wire shapes are the protocol's JSON (ids are numbers, times are unix ms).

import { Channel, invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

import type {
  HistoryPage,
  Message,
  PresenceStatus,
  Room,
  RoomKind,
  RoomState,
  SessionInfo,
  SessionState,
  SessionStatus,
  TransportKind,
  UserRef,
} from './generated/protocol';
import type {
  AccountView,
  AppStatus as GeneratedAppStatus,
  CommandError,
  ConnectionState,
  Hosted,
  HostInfo,
  InviteCode,
  LockCause,
  NotifyLevel,
  Pending,
  PresenceEvent,
  Queued,
  ReadEvent,
  SendFailedEvent,
  SentEvent,
  TypingEvent,
  UiEvent,
} from './generated/desktop';

export type UserId = number;
export type RoomId = number;
export type MessageId = number;
export type SessionId = number;
/** Milliseconds since the Unix epoch. */
export type Millis = number;

// The protocol's own types, generated from the Rust ones (`crates/proto`).
export type {
  HistoryPage,
  Message,
  PresenceStatus,
  Room,
  RoomKind,
  RoomState,
  SessionInfo,
  SessionState,
  TransportKind,
  UserRef,
};

// The desktop contract's types, generated from the shell's and the client core's.
export type {
  HostInfo,
  Hosted,
  LockCause,
  NotifyLevel,
  SendFailedEvent,
  SentEvent,
  TypingEvent,
  PresenceEvent,
  ReadEvent,
};
export type ConnState = ConnectionState;
export type Account = AccountView;
export type AppStatus = GeneratedAppStatus;
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
    return { code, message };
  }
  if (typeof err === 'string' && err !== '') {
    return { code: 'internal', message: err };
  }
  return { code: 'internal', message: 'Something went wrong.' };
}

export const commands = {
  status: (): Promise<AppStatus> => invoke<AppStatus>('status'),

  hostGroup: (owner: string, password: string, lan: boolean): Promise<Hosted> =>
    invoke<Hosted>('host_group', { owner, password, lan }),

  joinServer: (url: string, name: string, password: string, invite: string | null): Promise<UserRef> =>
    invoke<UserRef>('join_server', { url, name, password, invite }),

  rooms: (): Promise<RoomState[]> => invoke<RoomState[]>('rooms'),

  /** Streams pages over a channel (the cached page first, then the server's); resolves when done. */
  history: (
    room: RoomId,
    before: MessageId | null,
    limit: number,
    onPage: (page: HistoryPage) => void,
  ): Promise<null> => {
    const pages = new Channel<HistoryPage>();
    pages.onmessage = onPage;
    return invoke<null>('history', { room, before, limit, pages });
  },

  send: (room: RoomId, body: string): Promise<Queued> => invoke<Queued>('send', { room, body }),

  outbox: (): Promise<OutboxItem[]> => invoke<OutboxItem[]>('outbox'),

  markRead: (room: RoomId, messageId: MessageId): Promise<null> =>
    invoke<null>('mark_read', { room, message_id: messageId }),

  typing: (room: RoomId): Promise<null> => invoke<null>('typing', { room }),

  setDraft: (room: RoomId, text: string): Promise<null> => invoke<null>('set_draft', { room, text }),

  draft: (room: RoomId): Promise<string | null> => invoke<string | null>('draft', { room }),

  setFocusedRoom: (room: RoomId | null): Promise<null> =>
    invoke<null>('set_focused_room', { room }),

  createRoom: (name: string): Promise<RoomState> => invoke<RoomState>('create_room', { name }),

  openDm: (user: string): Promise<RoomState> => invoke<RoomState>('open_dm', { user }),

  joinRoom: (room: RoomId): Promise<RoomState> => invoke<RoomState>('join_room', { room }),

  directory: (): Promise<Room[]> => invoke<Room[]>('directory'),

  users: (): Promise<UserRef[]> => invoke<UserRef[]>('users'),

  invite: (): Promise<InviteCode> => invoke<InviteCode>('invite'),

  lockNow: (): Promise<null> => invoke<null>('lock_now'),

  unlock: (password: string): Promise<null> => invoke<null>('unlock', { password }),

  sessions: (): Promise<SessionInfo[]> => invoke<SessionInfo[]>('sessions'),

  revoke: (session: SessionId): Promise<null> => invoke<null>('revoke', { session }),

  setRoomLevel: (room: RoomId, level: NotifyLevel | null): Promise<null> =>
    invoke<null>('set_room_level', { room, level }),

  roomLevel: (room: RoomId): Promise<NotifyLevel | null> =>
    invoke<NotifyLevel | null>('room_level', { room }),

  setDnd: (on: boolean): Promise<null> => invoke<null>('set_dnd', { on }),

  transport: (): Promise<TransportKind | null> => invoke<TransportKind | null>('transport'),

  setTransport: (transport: TransportKind | null): Promise<null> =>
    invoke<null>('set_transport', { transport }),

  openLink: (url: string): Promise<null> => invoke<null>('open_link', { url }),
};

/** Subscribes to one shell event; resolves once the subscription is in place. */
export function on<K extends keyof EventMap>(
  name: K,
  handler: (payload: EventMap[K]) => void,
): Promise<UnlistenFn> {
  return listen<EventMap[K]>(name, (event) => handler(event.payload));
}
