//! The owner's administration (`/api/admin/…`): the group's members, its invites, the server's
//! status and the audit log of what owners did.

use serde::{Deserialize, Serialize};

use super::{MessageId, Millis, Role, UserRef};

/// `GET /api/admin`: everything the admin screen shows, in one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminOverview {
    pub status: ServerStatus,
    /// Every member, by id.
    pub members: Vec<AdminMember>,
    /// The latest invites, newest first.
    pub invites: Vec<AdminInvite>,
    /// The latest administrative actions, newest first.
    pub audit: Vec<AuditEntry>,
}

/// How the server is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerStatus {
    /// The server's version, as `tidings-server --version` prints it.
    pub version: String,
    /// When this server process started.
    pub started_at: Millis,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// What the database takes on disk (SQLite) or in its server (PostgreSQL), in bytes.
    pub database_bytes: u64,
    /// `"sqlite"` or `"postgres"`.
    pub database: String,
    /// Open connections on this node, by transport; every transport is listed.
    pub connections: Vec<TransportConnections>,
}

/// How many connections one transport has open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransportConnections {
    /// `websocket`; `stream` (SSE, streaming and iframe streaming); `poll` (long and short
    /// polling); `feed` (the event feed).
    pub transport: String,
    pub count: u64,
}

/// A member as the owner manages them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "typescript", ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminMember {
    pub user: UserRef,
    pub role: Role,
    pub created_at: Millis,
    /// Set while the member is disabled: they cannot log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Millis>,
    /// Sessions neither revoked nor expired.
    pub live_sessions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Millis>,
}

/// What the owner does to a member (`POST /api/admin/members/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberAction {
    /// Refuse their logins and end their sessions now.
    Disable,
    /// Let them log in again.
    Enable,
    /// Give them a new password, generated and shown once, and end their sessions.
    ResetPassword,
    /// Make them an owner.
    Promote,
    /// Make an owner a member again.
    Demote,
}

/// `POST /api/admin/members/{id}`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManageMember {
    pub action: MemberAction,
}

/// What a member action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "typescript", ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberManaged {
    /// The member as they now are.
    pub member: AdminMember,
    /// How many of their sessions it ended.
    pub sessions_ended: u32,
    /// The new password of a reset: shown to the owner once, to hand over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `POST /api/admin/invites`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "typescript", ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateInvite {
    /// How long it stays valid, in hours; none: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_hours: Option<u32>,
    /// How many accounts it may make (1 to 1,000).
    pub max_uses: u32,
}

/// An invite as the owner sees it; its code was shown once, when it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "typescript", ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminInvite {
    pub id: i64,
    /// Who made it; none: the host, on the server's command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserRef>,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    pub max_uses: u32,
    pub uses: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Millis>,
}

/// `POST /api/admin/invites`: the invite, and its code, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedInvite {
    pub invite: AdminInvite,
    pub code: String,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Disabled,
    Enabled,
    PasswordReset,
    /// `role` is the new role.
    RoleChanged,
    InviteCreated,
    InviteRevoked,
    /// An owner deleted `user`'s message `message`.
    MessageDeleted,
    /// A kind this client does not know yet (sent by a newer server). Never sent.
    #[serde(other)]
    #[cfg_attr(feature = "typescript", ts(skip))]
    Unknown,
}

/// One administrative action: who did what, to whom, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "typescript", ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub at: Millis,
    /// Who did it; none: the host, on the server's command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<UserRef>,
    pub action: AuditAction,
    /// The member acted on (for a message deleted, its author).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageId>,
    /// The new role, for a role changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}
