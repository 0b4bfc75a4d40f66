// Generated from the Rust types of `crates/proto` (tidings_proto::typescript). Do not edit:
// regenerate with `TIDINGS_BLESS=1 cargo test -p tidings-proto --test typescript`.

/**
 * A user as other users see them.
 */
export type UserRef = { id: number, name: string, };

/**
 * What a user may do on the server beyond chatting.
 */
export type Role = "owner" | "member";

export type RoomKind = "group" | "dm";

/**
 * A room, without anything specific to the user looking at it.
 */
export type Room = { id: number, kind: RoomKind, 
/**
 * The name of a group room; absent for a DM.
 */
name?: string, 
/**
 * The other member of a DM, when the room is seen by one of its two members.
 */
dm_peer?: UserRef, };

/**
 * A room the user is a member of, with the user's read position in it.
 */
export type RoomState = { 
/**
 * The newest message the user has read here (0: none).
 */
last_read_id: number, 
/**
 * The newest message in the room (0: the room is empty).
 */
latest_id: number, 
/**
 * Messages after `last_read_id` written by someone else.
 */
unread: number, 
/**
 * Of the unread messages, those that mention the user.
 */
unread_mentions: number, id: number, kind: RoomKind, 
/**
 * The name of a group room; absent for a DM.
 */
name?: string, 
/**
 * The other member of a DM, when the room is seen by one of its two members.
 */
dm_peer?: UserRef, };

/**
 * A stored message.
 */
export type Message = { id: number, room: number, author: UserRef, 
/**
 * Plain text. Never to be rendered as HTML.
 */
body: string, sent_at: number, 
/**
 * The id the author's client chose for idempotency, echoed so the author can match its outbox.
 */
client_id?: string, 
/**
 * Users mentioned with `@name` (and the author of the message it answers), ascending by id.
 * Left out when there are none.
 */
mentions?: Array<number>, 
/**
 * When its author last changed the body; absent when never.
 */
edited_at?: number, 
/**
 * When it was deleted: the body is then empty, with no mentions or reactions. A deleted
 * message stays in place as a placeholder.
 */
deleted_at?: number, 
/**
 * Its reactions, each emoji once, in the order first added. Left out when there are none.
 */
reactions?: Array<Reaction>, 
/**
 * The message this one answers, as that one now is. Its author is among `mentions`.
 */
reply_to?: Quote, 
/**
 * The files and images it carries, in the order its author put them. Left out when there
 * are none; a deleted message has none.
 */
attachments?: Array<Attachment>, };

/**
 * One emoji on a message, and who added it, in the order they did.
 */
export type Reaction = { emoji: string, users: Array<number>, };

/**
 * The message a reply answers, as it now is: its start, or nothing once deleted.
 */
export type Quote = { id: number, author: UserRef, 
/**
 * The start of its body (as the feed's previews are cut); empty once deleted.
 */
preview: string, deleted: boolean, };

/**
 * One page of a room's history, oldest message first.
 */
export type HistoryPage = { room: number, messages: Array<Message>, 
/**
 * Whether older messages exist before the first one of this page.
 */
has_more: boolean, };

/**
 * Whether a user has at least one live chat connection.
 */
export type PresenceStatus = "online" | "offline";

/**
 * A file or image uploaded to a room, which its members may download.
 */
export type Attachment = { 
/**
 * Random and unguessable: `GET /api/attachments/{id}` downloads it.
 */
id: string, room: number, 
/**
 * The file's name as uploaded, without any directory.
 */
name: string, 
/**
 * What the server found it to be (an image's own format), or what the uploader said.
 */
content_type: string, size: number, 
/**
 * For an image the server could open: its size in pixels. It then has a thumbnail,
 * `GET /api/attachments/{id}/thumbnail`, and is shown inline.
 */
image?: ImageSize | null, };

/**
 * An image's width and height in pixels.
 */
export type ImageSize = { width: number, height: number, };

/**
 * Search results, newest first.
 */
export type SearchResults = { hits: Array<SearchHit>, 
/**
 * Whether older hits exist: ask again with `before` set to the last hit's id.
 */
has_more: boolean, 
/**
 * Answered from a client's own copy of the messages, because the server could not be
 * asked (offline or locked): what that client never loaded is missing. The server always
 * says `false`.
 */
cached: boolean, };

/**
 * A message that matched, and the stretch of its body to show with the matched words marked.
 */
export type SearchHit = { message: Message, 
/**
 * The body (or, when long, the stretch around its first match, with `…` where it was cut)
 * as consecutive pieces; joined they are the text to show. Plain text, never HTML.
 */
highlight: Array<Fragment>, };

/**
 * A piece of a hit's text: a matched word, or the text between matches.
 */
export type Fragment = { text: string, 
/**
 * Whether this piece is a word the query matched.
 */
hit: boolean, };

/**
 * What went wrong, as a stable machine-readable code. The message beside it is for people and may
 * change; clients branch on the code only.
 */
export type ErrorCode = "bad_frame" | "unknown_type" | "invalid" | "too_large" | "unknown_room" | "not_member" | "rate_limited" | "unauthorized" | "forbidden" | "origin_not_allowed" | "csrf_header_required" | "subprotocol_required" | "bad_credentials" | "account_disabled" | "invite_invalid" | "name_taken" | "not_found" | "overloaded" | "storage" | "internal";

/**
 * An error as it travels: in an HTTP response body, or in an `error` frame on the chat channel.
 */
export type ErrorBody = { code: ErrorCode, 
/**
 * A sentence for people.
 */
message: string, 
/**
 * On the chat channel: the `type` of the frame this error answers, when it could be read.
 */
frame?: string, 
/**
 * On the chat channel: the `client_id` of the `send` this error answers, so the client can
 * match it to its outbox.
 */
client_id?: string, 
/**
 * With `rate_limited` and `overloaded`: when to try again.
 */
retry_after_ms?: number, };

/**
 * `POST /api/login`.
 */
export type LoginRequest = { name: string, password: string, 
/**
 * A label for the sessions list ("laptop", "tidings-cli").
 */
device?: string, };

/**
 * `POST /api/register`: create an account with a one-time invite, and log in.
 */
export type RegisterRequest = { invite: string, 
/**
 * 1-32 letters, digits, `_`, `.` or `-`, not ending in `.`.
 */
name: string, 
/**
 * At least 8 characters, at most 1,024 bytes.
 */
password: string, device?: string, };

/**
 * The answer to a login or a registration.
 */
export type LoginResponse = { 
/**
 * The opaque session token. Send it as `Authorization: Bearer <token>`. The server keeps only
 * its hash: it cannot be shown again.
 */
token: string, user: UserRef, role: Role, session: SessionInfo, };

/**
 * One login session, as listed by `GET /api/sessions`.
 */
export type SessionInfo = { id: number, device: string, created_at: number, last_seen_at: number, expires_at: number, 
/**
 * Whether this is the session making the request.
 */
current: boolean, };

/**
 * `GET /api/me`.
 */
export type Me = { user: UserRef, role: Role, session: SessionInfo, };

/**
 * `DELETE /api/sessions`: every other session was revoked.
 */
export type Revoked = { revoked: Array<number>, };

/**
 * `POST /api/rooms`.
 */
export type CreateRoom = { name: string, };

/**
 * `POST /api/dms`: open (or find) the DM with another user.
 */
export type OpenDm = { 
/**
 * The other user's name.
 */
user: string, };

/**
 * `POST /api/rooms/{id}/messages`.
 */
export type SendMessage = { 
/**
 * Optional idempotency key (1-64 bytes): posting the same one twice stores one message.
 */
client_id?: string, 
/**
 * Plain text, at most the server's `max_body_bytes`; not only white space unless the
 * message carries attachments.
 */
body: string, 
/**
 * A message of the same room (not deleted) this one answers.
 */
reply_to?: number, 
/**
 * Ids of the sender's own uploads to this room that no message carries yet, at most 10.
 */
attachments?: Array<string>, };

/**
 * `PATCH /api/messages/{id}`: one's own message gets a new body.
 */
export type EditMessage = { 
/**
 * Plain text, not only white space, at most the server's `max_body_bytes`.
 */
body: string, };

/**
 * `POST /api/rooms/{id}/read`.
 */
export type ReadMarker = { message_id: number, };

/**
 * `POST /api/invites`: a one-time invite code (shown once).
 */
export type Invite = { code: string, expires_at?: number, };

/**
 * `GET /api/admin`: everything the admin screen shows, in one answer.
 */
export type AdminOverview = { status: ServerStatus, 
/**
 * Every member, by id.
 */
members: Array<AdminMember>, 
/**
 * The latest invites, newest first.
 */
invites: Array<AdminInvite>, 
/**
 * The latest administrative actions, newest first.
 */
audit: Array<AuditEntry>, };

/**
 * How the server is doing.
 */
export type ServerStatus = { 
/**
 * The server's version, as `tidings-server --version` prints it.
 */
version: string, 
/**
 * When this server process started.
 */
started_at: number, 
/**
 * Seconds since it started.
 */
uptime_secs: number, 
/**
 * What the database takes on disk (SQLite) or in its server (PostgreSQL), in bytes.
 */
database_bytes: number, 
/**
 * `"sqlite"` or `"postgres"`.
 */
database: string, 
/**
 * Open connections on this node, by transport; every transport is listed.
 */
connections: Array<TransportConnections>, };

/**
 * How many connections one transport has open.
 */
export type TransportConnections = { 
/**
 * `websocket`; `stream` (SSE, streaming and iframe streaming); `poll` (long and short
 * polling); `feed` (the event feed).
 */
transport: string, count: number, };

/**
 * A member as the owner manages them.
 */
export type AdminMember = { user: UserRef, role: Role, created_at: number, 
/**
 * Set while the member is disabled: they cannot log in.
 */
disabled_at?: number, 
/**
 * Sessions neither revoked nor expired.
 */
live_sessions: number, last_seen_at?: number, };

/**
 * What the owner does to a member (`POST /api/admin/members/{id}`).
 */
export type MemberAction = "disable" | "enable" | "reset_password" | "promote" | "demote";

/**
 * `POST /api/admin/members/{id}`'s body.
 */
export type ManageMember = { action: MemberAction, };

/**
 * What a member action did.
 */
export type MemberManaged = { 
/**
 * The member as they now are.
 */
member: AdminMember, 
/**
 * How many of their sessions it ended.
 */
sessions_ended: number, 
/**
 * The new password of a reset: shown to the owner once, to hand over.
 */
password?: string, };

/**
 * `POST /api/admin/invites`'s body.
 */
export type CreateInvite = { 
/**
 * How long it stays valid, in hours; none: until revoked.
 */
expires_in_hours?: number, 
/**
 * How many accounts it may make (1 to 1,000).
 */
max_uses: number, };

/**
 * An invite as the owner sees it; its code was shown once, when it was made.
 */
export type AdminInvite = { id: number, 
/**
 * Who made it; none: the host, on the server's command line.
 */
created_by?: UserRef, created_at: number, expires_at?: number, max_uses: number, uses: number, last_used_at?: number, revoked_at?: number, };

/**
 * `POST /api/admin/invites`: the invite, and its code, shown this once.
 */
export type CreatedInvite = { invite: AdminInvite, code: string, };

/**
 * What an audit entry records.
 */
export type AuditAction = "disabled" | "enabled" | "password_reset" | "role_changed" | "invite_created" | "invite_revoked" | "message_deleted";

/**
 * One administrative action: who did what, to whom, when.
 */
export type AuditEntry = { id: number, at: number, 
/**
 * Who did it; none: the host, on the server's command line.
 */
actor?: UserRef, action: AuditAction, 
/**
 * The member acted on (for a message deleted, its author).
 */
user?: UserRef, invite?: number, message?: number, 
/**
 * The new role, for a role changed.
 */
role?: Role, };

/**
 * A frame from the client.
 */
export type ClientFrame = { "type": "send", room: number, client_id: string, body: string, 
/**
 * A message of the same room this one answers.
 */
reply_to?: number | null, 
/**
 * Ids of the sender's own uploads to this room that no message carries yet (at most
 * [`MAX_ATTACHMENTS`]); with some, the body may be empty.
 */
attachments?: Array<string>, } | { "type": "read", room: number, message_id: number, } | { "type": "typing", room: number, } | { "type": "history", room: number, before?: number | null, limit?: number | null, } | { "type": "sync", since: number, } | { "type": "edit", message_id: number, body: string, } | { "type": "delete", message_id: number, } | { "type": "react", message_id: number, emoji: string, } | { "type": "unreact", message_id: number, emoji: string, };

/**
 * A frame from the server.
 */
export type ServerFrame = { "type": "hello" } & Hello | { "type": "message" } & Message | { "type": "changed", id: number, message: Message, } | { "type": "ack", client_id: string, id: number, room: number, } | { "type": "typing", room: number, user: UserRef, } | { "type": "presence", user: UserRef, status: PresenceStatus, } | { "type": "read", room: number, user: number, message_id: number, } | { "type": "history" } & HistoryPage | { "type": "synced", latest_id: number, has_more: boolean, } | { "type": "error" } & ErrorBody | { "type": "session" } & SessionStatus | { "type": "lock" } & Lock;

/**
 * The first frame on every connection: who you are and where you stand.
 */
export type Hello = { user: UserRef, session: number, rooms: Array<RoomState>, 
/**
 * Of the users who share a room with this one (and this one), those with at least one live
 * chat connection when this connection opened; `presence` frames keep it current. Presence
 * is told only to the people who share a room with the user.
 */
online: Array<number>, 
/**
 * The newest message id on the server when the connection opened.
 */
latest_id: number, 
/**
 * The server pings this often; a client that hears nothing for two intervals should reconnect.
 */
heartbeat_ms: number, 
/**
 * The largest message body the server accepts, in bytes.
 */
max_body_bytes: number, };

/**
 * Where a session stands.
 */
export type SessionState = "active" | "expiring" | "expired" | "revoked";

/**
 * `event: session`.
 */
export type SessionStatus = { state: SessionState, 
/**
 * The server's clock when this was sent.
 */
now: number, 
/**
 * The absolute end of the session.
 */
expires_at: number, 
/**
 * When the session ends if the user does nothing until then.
 */
idle_expires_at: number, };

/**
 * Why a session ended.
 */
export type LockReason = "expired" | "revoked";

/**
 * `event: lock`.
 */
export type Lock = { reason: LockReason, };

/**
 * `event: message`: enough to raise a notification without fetching anything.
 */
export type MessageAlert = { room: number, id: number, author: UserRef, 
/**
 * The start of the body, at most [`PREVIEW_CHARS`] characters.
 */
preview: string, sent_at: number, 
/**
 * Whether the message mentions the user this feed belongs to.
 */
mentions_you: boolean, };

/**
 * `event: retract`: the message `id` of `room` was deleted. Its event id is the deletion's
 * place in the log.
 */
export type Retract = { room: number, id: number, };

/**
 * `event: reset`.
 */
export type Reset = { 
/**
 * The newest message id; the feed continues after it.
 */
latest_id: number, };

/**
 * Frames in id order, and where to resume after them.
 */
export type Batch = { 
/**
 * Every message of the user's up to here has been sent (in this batch or before): the
 * `cursor` of the next request.
 */
cursor: number, frames: Array<ServerFrame>, };

/**
 * The ways of carrying the chat channel, from the best to the last resort.
 */
export type TransportKind = "web_socket" | "sse" | "streaming" | "iframe" | "long_polling" | "short_polling";

/**
 * The answer to `GET /api/transports`.
 */
export type Transports = { 
/**
 * What this server offers, best first.
 */
transports: Array<TransportKind>, 
/**
 * How long a poll is held when it asks for no `timeout`.
 */
poll_timeout_ms: number, 
/**
 * The longest `timeout` a poll may ask for.
 */
max_poll_timeout_ms: number, 
/**
 * How often a short-polling client should poll.
 */
short_poll_interval_ms: number, 
/**
 * A stream sends at least this often (an empty batch when nothing happens).
 */
heartbeat_ms: number, 
/**
 * An iframe stream ends after about this many bytes; the client reopens it from its cursor.
 */
stream_max_bytes: number, 
/**
 * A user whose last transport that polls or streams ended stays online this long.
 */
presence_grace_ms: number, };
