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
