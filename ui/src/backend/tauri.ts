// The desktop app's backend: each command is the shell's command of the same name (snake case),
// each event the shell's event. The only place in the UI that calls Tauri.

import { Channel, invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

import type {
  AdminOverview,
  AppStatus,
  Attachment,
  CreatedInvite,
  Me,
  MemberAction,
  MemberManaged,
  UserId,
  Backend,
  Commands,
  EventMap,
  HistoryPage,
  Hosted,
  InviteCode,
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
} from '../ipc';

/** Blob URLs of the attachments shown so far, by id (and `/thumbnail`). */
const blobUrls = new Map<string, Promise<string>>();

const commands: Commands = {
  status: (): Promise<AppStatus> => invoke<AppStatus>('status'),

  hostGroup: (owner: string, password: string, lan: boolean): Promise<Hosted> =>
    invoke<Hosted>('host_group', { owner, password, lan }),

  joinServer: (url: string, name: string, password: string, invite: string | null): Promise<UserRef> =>
    invoke<UserRef>('join_server', { url, name, password, invite }),

  autostart: (): Promise<boolean> => invoke<boolean>('autostart'),

  setAutostart: (on: boolean): Promise<void> => invoke<void>('set_autostart', { on }),

  quit: (): Promise<void> => invoke<void>('quit'),

  trustCertificate: (url: string, fingerprint: string): Promise<void> =>
    invoke<void>('trust_certificate', { url, fingerprint }),

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

  send: (room: RoomId, body: string, replyTo: MessageId | null, attachments: Attachment[]): Promise<Queued> =>
    invoke<Queued>('send', { room, body, reply_to: replyTo, attachments }),

  /** The file goes to the shell as the raw body (the rest as headers); progress comes back as
   * `upload_progress` events, which the shell sends as the bytes reach the server. */
  async upload(room: RoomId, file: File, upload: string, onProgress: (sent: number, total: number) => void): Promise<Attachment> {
    const stop = await listen<EventMap['upload_progress']>('upload_progress', (event) => {
      if (event.payload.upload === upload) onProgress(event.payload.sent, event.payload.total);
    });
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      return await invoke<Attachment>('upload', bytes, {
        headers: {
          'x-room': String(room),
          'x-name': encodeURIComponent(file.name),
          'x-upload': upload,
          'content-type': file.type === '' ? 'application/octet-stream' : file.type,
        },
      });
    } finally {
      stop();
    }
  },

  cancelUpload: (upload: string): Promise<null> => invoke<null>('cancel_upload', { upload }),

  /** The webview cannot ask the server: the shell fetches the bytes, shown from a blob URL (one
   * per attachment, kept for the page's life). */
  attachmentUrl(attachment: Attachment, thumbnail: boolean): Promise<string> {
    const key = `${attachment.id}${thumbnail ? '/thumbnail' : ''}`;
    let url = blobUrls.get(key);
    if (url === undefined) {
      url = invoke<ArrayBuffer>('attachment', { id: attachment.id, thumbnail }).then((bytes) =>
        URL.createObjectURL(new Blob([bytes], thumbnail ? {} : { type: attachment.content_type })),
      );
      // A failure is not kept: the next look tries again.
      url.catch(() => blobUrls.delete(key));
      blobUrls.set(key, url);
    }
    return url;
  },

  outbox: (): Promise<OutboxItem[]> => invoke<OutboxItem[]>('outbox'),

  search: (query: string, room: RoomId | null, before: MessageId | null): Promise<SearchResults> =>
    invoke<SearchResults>('search', { query, room, before }),

  markRead: (room: RoomId, messageId: MessageId): Promise<null> =>
    invoke<null>('mark_read', { room, message_id: messageId }),

  editMessage: (message: MessageId, body: string): Promise<Message> =>
    invoke<Message>('edit_message', { message_id: message, body }),

  deleteMessage: (message: MessageId): Promise<Message> =>
    invoke<Message>('delete_message', { message_id: message }),

  react: (message: MessageId, emoji: string, on: boolean): Promise<Message> =>
    invoke<Message>('react', { message_id: message, emoji, on }),

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

  members: (room: RoomId): Promise<UserRef[]> => invoke<UserRef[]>('members', { room }),

  invite: (): Promise<InviteCode> => invoke<InviteCode>('invite'),

  me: (): Promise<Me> => invoke<Me>('me'),

  admin: (): Promise<AdminOverview> => invoke<AdminOverview>('admin'),

  manageMember: (user: UserId, action: MemberAction): Promise<MemberManaged> =>
    invoke<MemberManaged>('manage_member', { user, action }),

  createInvite: (expiresInHours: number | null, maxUses: number): Promise<CreatedInvite> =>
    invoke<CreatedInvite>('create_invite', { expiresInHours, maxUses }),

  revokeInvite: (invite: number): Promise<null> => invoke<null>('revoke_invite', { invite }),

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

export const tauri: Backend = {
  kind: 'desktop',
  commands,
  on<K extends keyof EventMap>(name: K, handler: (payload: EventMap[K]) => void) {
    return listen<EventMap[K]>(name, (event) => handler(event.payload));
  },
};
