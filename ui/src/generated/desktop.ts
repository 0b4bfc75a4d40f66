// Generated from the Rust types of `src-tauri` and `crates/client` (tidings_desktop::contract). Do not edit:
// regenerate with `TIDINGS_BLESS=1 cargo test -p tidings-desktop --lib contract`.

import type { Attachment, ErrorBody, Message, PresenceStatus, RoomState, SessionStatus, TransportKind, UserRef } from './protocol';

/**
 * Where the connection to the server stands.
 */
export type ConnectionState = { "state": "connecting" } | { "state": "online", transport: TransportKind, } | { "state": "offline", retry_at: number, attempt: number, } | { "state": "locked" };

/**
 * Why the client locked.
 */
export type LockCause = "expired" | "revoked" | "rejected" | "manual";

/**
 * Which messages of a room raise a notification.
 */
export type NotifyLevel = "all" | "mentions" | "nothing";

export type AccountView = { server: string, user: UserRef, locked: boolean, };

export type AppStatus = { account: AccountView | null, state: ConnectionState, hosting: HostInfo | null, dnd: boolean, };

/**
 * What the UI shows about hosting.
 */
export type HostInfo = { address: string, lan: boolean, };

export type Hosted = { host: HostInfo, invite: string, };

export type Queued = { client_id: string, };

export type Pending = { client_id: string, room: number, body: string, created_at: number, reply_to?: number, attachments: Array<Attachment>, };

export type InviteCode = { code: string, };

export type CommandError = { code: string, message: string, 
/**
 * With `untrusted_certificate` or `certificate_changed`: the SHA-256 fingerprint of the
 * certificate the server showed.
 */
fingerprint?: string, };

/**
 * An outbox message was stored by the server.
 */
export type SentEvent = { client_id: string, room: number, message_id: number, };

/**
 * The server refused an outbox message for good.
 */
export type SendFailedEvent = { client_id: string, room: number, error: ErrorBody, };

export type TypingEvent = { room: number, user: UserRef, };

export type PresenceEvent = { user: UserRef, status: PresenceStatus, };

export type ReadEvent = { room: number, message_id: number, };

export type LockedEvent = { cause: LockCause, };

export type OpenRoomEvent = { room: number, };

/**
 * `sent` of `total` bytes of the upload the UI named `upload` have gone out.
 */
export type UploadProgressEvent = { upload: string, sent: number, total: number, };

/**
 * A certificate the client refused, mid-session.
 */
export type UntrustedEvent = { server: string, error: CommandError, };

/**
 * Every event the shell emits: the variant's name (snake case) is the event's name, its content
 * the payload.
 */
export type UiEvent = { "name": "state", "payload": ConnectionState } | { "name": "rooms", "payload": Array<RoomState> } | { "name": "message", "payload": Message } | { "name": "changed", "payload": Message } | { "name": "sent", "payload": SentEvent } | { "name": "send_failed", "payload": SendFailedEvent } | { "name": "typing", "payload": TypingEvent } | { "name": "presence", "payload": PresenceEvent } | { "name": "online", "payload": Array<number> } | { "name": "read", "payload": ReadEvent } | { "name": "session", "payload": SessionStatus } | { "name": "locked", "payload": LockedEvent } | { "name": "unlocked", "payload": null } | { "name": "open_room", "payload": OpenRoomEvent } | { "name": "dnd", "payload": boolean } | { "name": "upload_progress", "payload": UploadProgressEvent } | { "name": "confirm_quit", "payload": null } | { "name": "untrusted", "payload": UntrustedEvent };
