//! Accounts: users, the invites that admit them, and their login sessions.

use crate::{Millis, SessionId, UserId};

/// What a user may do beyond chatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the server: creates invites and manages users. The first user is the owner.
    Owner,
    /// An ordinary user.
    Member,
}

text_enum!(Role, "role", {
    Owner => "owner",
    Member => "member",
});

/// A user account (without its password hash, which only [`Store::user_by_name`] returns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub created_at: Millis,
}

/// A login session. The token itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// A label for the device, as given at login.
    pub device: String,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    /// When the session stops being valid, whatever its use.
    pub expires_at: Millis,
    /// Set once the session is revoked (logged out or kicked).
    pub revoked_at: Option<Millis>,
}

/// A user as they log in: the account, its password hash, and whether the owner disabled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    pub disabled: bool,
}

/// A user as the owner manages them (see [`Store::members_for_admin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    /// Set while the owner has the account disabled.
    pub disabled_at: Option<Millis>,
    /// Sessions neither revoked nor past their absolute expiry.
    pub live_sessions: u32,
    /// The latest use of any of the user's sessions.
    pub last_seen_at: Option<Millis>,
}

/// What an owner (or the host, at the command line) does to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberAction {
    /// Refuse their logins and end their sessions.
    Disable,
    /// Let them log in again.
    Enable,
    /// Replace their password with one whose hash is given, and end their sessions.
    ResetPassword { password_hash: String },
    /// Make them an owner, or a member again.
    SetRole(Role),
}

/// What a member action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    /// False when the member already was as asked: nothing was changed or audited.
    pub changed: bool,
    /// The sessions it ended, ascending.
    pub revoked: Vec<SessionId>,
}

/// Whether `action` may be done to `target` by `actor` (`None`: the host at the command line),
/// and whether it changes anything; one decision for both backends. `owners` counts the enabled
/// owners: none of these actions may leave the group without one, and an owner does not disable,
/// demote or reset the password of themself (another owner, or the host, can).
pub(crate) fn member_action(
    actor: Option<UserId>,
    target: &User,
    disabled: bool,
    owners: u64,
    action: &MemberAction,
) -> Result<bool, crate::StoreError> {
    let last_owner = target.role == Role::Owner && !disabled && owners <= 1;
    let themself = actor == Some(target.id);
    match action {
        MemberAction::Disable if disabled => Ok(false),
        MemberAction::Disable if last_owner || themself => Err(crate::StoreError::NotAllowed),
        MemberAction::Disable => Ok(true),
        MemberAction::Enable => Ok(disabled),
        // Their own password is changed knowing the old one, not reset.
        MemberAction::ResetPassword { .. } if themself => Err(crate::StoreError::NotAllowed),
        MemberAction::ResetPassword { .. } => Ok(true),
        MemberAction::SetRole(role) if *role == target.role => Ok(false),
        MemberAction::SetRole(Role::Member) if last_owner || themself => {
            Err(crate::StoreError::NotAllowed)
        }
        MemberAction::SetRole(_) => Ok(true),
    }
}

impl MemberAction {
    /// How the action is audited, and the detail it records.
    pub(crate) fn audited(&self) -> (AuditAction, Option<&'static str>) {
        match self {
            MemberAction::Disable => (AuditAction::Disabled, None),
            MemberAction::Enable => (AuditAction::Enabled, None),
            MemberAction::ResetPassword { .. } => (AuditAction::PasswordReset, None),
            MemberAction::SetRole(role) => (AuditAction::RoleChanged, Some(role.as_str())),
        }
    }

    /// Whether the action ends the member's sessions.
    pub(crate) fn ends_sessions(&self) -> bool {
        matches!(
            self,
            MemberAction::Disable | MemberAction::ResetPassword { .. }
        )
    }
}

/// An invite's id: what lists and revokes it (its code is known only to whoever got it).
pub type InviteId = i64;

/// An invite to record (see [`Store::create_invite`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvite {
    pub code_hash: [u8; 32],
    /// `None` for the host at the command line.
    pub created_by: Option<UserId>,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    /// How many accounts it may make, at least 1.
    pub max_uses: u32,
}

/// An invite as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: InviteId,
    pub created_by: Option<UserId>,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub max_uses: u32,
    pub uses: u32,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Disabled,
    Enabled,
    PasswordReset,
    /// The detail is the new role.
    RoleChanged,
    InviteCreated,
    InviteRevoked,
    /// An owner deleted someone else's message; the user is its author.
    MessageDeleted,
}

text_enum!(AuditAction, "audit action", {
    Disabled => "disabled",
    Enabled => "enabled",
    PasswordReset => "password_reset",
    RoleChanged => "role_changed",
    InviteCreated => "invite_created",
    InviteRevoked => "invite_revoked",
    MessageDeleted => "message_deleted",
});

/// One administrative action: who (`None`: the host at the command line) did what, to whom, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Millis,
    pub actor: Option<UserId>,
    pub action: AuditAction,
    pub user: Option<UserId>,
    pub invite: Option<InviteId>,
    pub message: Option<crate::MessageId>,
    pub detail: Option<String>,
}

impl AuditEntry {
    /// An entry to insert (its id is the database's to give).
    pub(crate) fn new(at: Millis, actor: Option<UserId>, action: AuditAction) -> AuditEntry {
        AuditEntry {
            id: 0,
            at,
            actor,
            action,
            user: None,
            invite: None,
            message: None,
            detail: None,
        }
    }
}

/// The most audit entries [`Store::audit_log`] answers at once.
pub const AUDIT_PAGE: u32 = 200;
