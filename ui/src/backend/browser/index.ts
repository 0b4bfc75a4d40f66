// The browser's backend: the same commands and events as the desktop shell's, carried out by the
// page itself against the server that served it — the session in its HttpOnly cookie, the chat
// channel and feed in `session.ts`, the outbox in IndexedDB, drafts and notification settings in
// localStorage. What only a desktop can do (host a group, a tray) is not offered here.

import type {
  AdminOverview,
  CreateInvite,
  CreatedInvite,
  MemberAction,
  MemberManaged,
  UserId,
} from '../../ipc';
import type {
  AlertPermission,
  AppStatus,
  Attachment,
  Backend,
  Commands,
  EventMap,
  HistoryPage,
  Hosted,
  Invite,
  InviteCode,
  LoginResponse,
  Me,
  Message,
  MessageId,
  NotifyLevel,
  OutboxItem,
  Queued,
  Room,
  RoomId,
  RoomState,
  SearchResults,
  SessionId,
  SessionInfo,
  TransportKind,
  UserRef,
} from '../../ipc';
import { Alerts } from './alerts';
import { Emitter } from './emitter';
import { ApiFailure, call, onUnauthorized, upload } from './http';
import { Outbox } from './outbox';
import { Prefs } from './prefs';
import { Session } from './session';

const events = new Emitter();
/** The uploads going on, by the UI's id for each, to cancel them. */
const uploads = new Map<string, AbortController>();
const alerts = new Alerts((room) => events.emit('open_room', { room }));
let session: Session | null = null;
/** Set once the cookie's session is known to be gone: the page shows the login screen. */
let starting: Promise<Session | null> | null = null;

onUnauthorized(() => session?.lock('rejected'));

/** The device name the server lists under sessions. */
function device(): string {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom(e|ium)\//.test(ua) ? 'Chromium' : /Safari\//.test(ua) ? 'Safari' : 'a browser';
  return `${browser} (web)`;
}

async function begin(user: UserRef): Promise<Session> {
  if (session !== null && session.user.id === user.id) return session;
  const outbox = await Outbox.open(user.id);
  session = new Session(user, events, outbox, new Prefs(user.id), alerts);
  session.start();
  return session;
}

/** The session of the cookie this page has, if it is live. */
function current(): Promise<Session | null> {
  if (session !== null) return Promise.resolve(session);
  starting ??= call<Me>('GET', '/api/me', { noLockOn401: true })
    .then((me) => begin(me.user))
    .catch((err: unknown) => {
      starting = null;
      if (err instanceof ApiFailure && err.status === 401) return null;
      throw err;
    });
  return starting;
}

function need(): Session {
  if (session === null) throw new ApiFailure('unauthorized', 'Log in first.', 401);
  return session;
}

/** A random client id; `crypto.randomUUID` is for secure pages only, and this may be plain http. */
function clientId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const unavailable = (what: string): Promise<never> =>
  Promise.reject(new ApiFailure('unsupported', `${what} is only possible in the desktop app.`, 0));

const commands: Commands = {
  async status(): Promise<AppStatus> {
    const s = await current();
    return {
      account: s === null ? null : { server: window.location.origin, user: s.user, locked: s.isLocked },
      state: s?.state ?? { state: 'connecting' },
      hosting: null,
      dnd: s?.prefs.dnd() ?? false,
    };
  },

  hostGroup: (): Promise<Hosted> => unavailable('Hosting a group'),

  trustCertificate: (): Promise<void> => unavailable('Trusting a certificate'),

  autostart: async (): Promise<boolean> => false,

  setAutostart: (): Promise<void> => unavailable('Starting at login'),

  quit: (): Promise<void> => unavailable('Quitting'),

  /** Logs in to this page's server (the address is where the page came from), or registers with an invite. */
  async joinServer(_url: string, name: string, password: string, invite: string | null): Promise<UserRef> {
    const answer =
      invite === null
        ? await call<LoginResponse>('POST', '/api/login', { body: { name, password, device: device() }, noLockOn401: true })
        : await call<LoginResponse>('POST', '/api/register', {
            body: { invite, name, password, device: device() },
            noLockOn401: true,
          });
    starting = null;
    await begin(answer.user);
    return answer.user;
  },

  async rooms(): Promise<RoomState[]> {
    const rooms = await call<RoomState[]>('GET', '/api/rooms');
    session?.knownRooms(rooms);
    return rooms;
  },

  async history(room: RoomId, before: MessageId | null, limit: number, onPage: (page: HistoryPage) => void): Promise<null> {
    const query = `limit=${limit}${before === null ? '' : `&before=${before}`}`;
    onPage(await call<HistoryPage>('GET', `/api/rooms/${room}/messages?${query}`));
    return null;
  },

  async send(room: RoomId, body: string, replyTo: MessageId | null, attachments: Attachment[]): Promise<Queued> {
    const s = need();
    // Sending is something the user did: the moment to ask about notifications, once.
    if (alerts.permission() === 'default') void alerts.ask();
    const item: OutboxItem = { client_id: clientId(), room, body, created_at: Date.now(), attachments };
    if (replyTo !== null) item.reply_to = replyTo;
    await s.send(item);
    return { client_id: item.client_id };
  },

  async upload(room: RoomId, file: File, id: string, onProgress: (sent: number, total: number) => void): Promise<Attachment> {
    const cancel = new AbortController();
    uploads.set(id, cancel);
    try {
      const path = `/api/rooms/${room}/attachments?name=${encodeURIComponent(file.name)}`;
      return await upload<Attachment>(path, file, onProgress, cancel.signal);
    } finally {
      uploads.delete(id);
    }
  },

  cancelUpload(id: string): Promise<null> {
    uploads.get(id)?.abort();
    return Promise.resolve(null);
  },

  /** Same origin: the page loads them itself, with its session cookie. */
  attachmentUrl: (attachment: Attachment, thumbnail: boolean): Promise<string> =>
    Promise.resolve(`/api/attachments/${encodeURIComponent(attachment.id)}${thumbnail ? '/thumbnail' : ''}`),

  outbox: async (): Promise<OutboxItem[]> => (session === null ? [] : session.outboxItems()),

  editMessage: (message: MessageId, body: string): Promise<Message> =>
    call<Message>('PATCH', `/api/messages/${message}`, { body: { body } }),

  deleteMessage: (message: MessageId): Promise<Message> => call<Message>('DELETE', `/api/messages/${message}`),

  react: (message: MessageId, emoji: string, on: boolean): Promise<Message> =>
    call<Message>(on ? 'PUT' : 'DELETE', `/api/messages/${message}/reactions/${encodeURIComponent(emoji)}`),

  search(query: string, room: RoomId | null, before: MessageId | null): Promise<SearchResults> {
    const params = new URLSearchParams({ q: query });
    if (room !== null) params.set('room', String(room));
    if (before !== null) params.set('before', String(before));
    return call<SearchResults>('GET', `/api/search?${params.toString()}`);
  },

  async markRead(room: RoomId, messageId: MessageId): Promise<null> {
    if (!need().sendFrame({ type: 'read', room, message_id: messageId })) {
      await call('POST', `/api/rooms/${room}/read`, { body: { message_id: messageId } });
    }
    return null;
  },

  async typing(room: RoomId): Promise<null> {
    need().sendFrame({ type: 'typing', room });
    return null;
  },

  async setDraft(room: RoomId, text: string): Promise<null> {
    need().prefs.setDraft(room, text);
    return null;
  },

  draft: async (room: RoomId): Promise<string | null> => need().prefs.draft(room),

  async setFocusedRoom(room: RoomId | null): Promise<null> {
    session?.policy.setFocusedRoom(room);
    return null;
  },

  async createRoom(name: string): Promise<RoomState> {
    const room = await call<RoomState>('POST', '/api/rooms', { body: { name } });
    session?.knownRooms([room]);
    return room;
  },

  async openDm(user: string): Promise<RoomState> {
    const room = await call<RoomState>('POST', '/api/dms', { body: { user } });
    session?.knownRooms([room]);
    return room;
  },

  async joinRoom(room: RoomId): Promise<RoomState> {
    const joined = await call<RoomState>('POST', `/api/rooms/${room}/join`);
    session?.knownRooms([joined]);
    return joined;
  },

  directory: (): Promise<Room[]> => call<Room[]>('GET', '/api/rooms/directory'),

  users: (): Promise<UserRef[]> => call<UserRef[]>('GET', '/api/users'),

  members: (room: RoomId): Promise<UserRef[]> => call<UserRef[]>('GET', `/api/rooms/${room}/members`),

  invite: async (): Promise<InviteCode> => ({ code: (await call<Invite>('POST', '/api/invites')).code }),

  me: (): Promise<Me> => call<Me>('GET', '/api/me'),

  admin: (): Promise<AdminOverview> => call<AdminOverview>('GET', '/api/admin'),

  manageMember: (user: UserId, action: MemberAction): Promise<MemberManaged> =>
    call<MemberManaged>('POST', `/api/admin/members/${user}`, { body: { action } }),

  createInvite(expiresInHours: number | null, maxUses: number): Promise<CreatedInvite> {
    const terms: CreateInvite = { max_uses: maxUses };
    if (expiresInHours !== null) terms.expires_in_hours = expiresInHours;
    return call<CreatedInvite>('POST', '/api/admin/invites', { body: terms });
  },

  async revokeInvite(invite: number): Promise<null> {
    await call('DELETE', `/api/admin/invites/${invite}`);
    return null;
  },

  /** Locks, and ends the session on the server: a locked tab holds no live cookie. */
  async lockNow(): Promise<null> {
    const s = need();
    s.lock('manual');
    await call('POST', '/api/logout', { noLockOn401: true }).catch(() => undefined);
    return null;
  },

  async unlock(password: string): Promise<null> {
    const s = need();
    const answer = await call<LoginResponse>('POST', '/api/login', {
      body: { name: s.user.name, password, device: device() },
      noLockOn401: true,
    });
    if (answer.user.id !== s.user.id) throw new ApiFailure('internal', 'The server answered for another user.', 0);
    s.unlocked();
    return null;
  },

  sessions: (): Promise<SessionInfo[]> => call<SessionInfo[]>('GET', '/api/sessions'),

  async revoke(id: SessionId): Promise<null> {
    await call('DELETE', `/api/sessions/${id}`);
    return null;
  },

  async setRoomLevel(room: RoomId, level: NotifyLevel | null): Promise<null> {
    const s = need();
    s.prefs.setLevel(room, level);
    s.policy.setRoomLevel(room, level);
    return null;
  },

  roomLevel: async (room: RoomId): Promise<NotifyLevel | null> => need().prefs.level(room),

  async setDnd(on: boolean): Promise<null> {
    const s = need();
    s.prefs.setDnd(on);
    s.policy.setDnd(on);
    events.emit('dnd', on);
    return null;
  },

  transport: async (): Promise<TransportKind | null> => need().prefs.transport(),

  async setTransport(kind: TransportKind | null): Promise<null> {
    const s = need();
    s.prefs.setTransport(kind);
    s.restart();
    return null;
  },

  async openLink(url: string): Promise<null> {
    window.open(url, '_blank', 'noopener,noreferrer');
    return null;
  },
};

export const browser: Backend = {
  kind: 'browser',
  commands,
  on<K extends keyof EventMap>(name: K, handler: (payload: EventMap[K]) => void) {
    return Promise.resolve(events.on(name, handler));
  },
  alerts: {
    permission: (): AlertPermission => alerts.permission(),
    ask: (): Promise<AlertPermission> => alerts.ask(),
  },
};
