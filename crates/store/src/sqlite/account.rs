//! Accounts on SQLite: users, invites, sessions.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Sqlite;
use super::room::join_everyone_rooms;
use crate::account::member_action;
use crate::error::name_taken_or;
use crate::{
    AuditEntry, Credentials, Invite, InviteId, LogEntry, Managed, Member, MemberAction, Millis,
    NewInvite, Role, RoomId, Session, SessionId, StoreError, User, UserId,
};

/// A user from the four columns id, name, role, created_at starting at `at`.
pub(crate) fn user_from(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        role: row.get(at + 2)?,
        created_at: row.get(at + 3)?,
    })
}

fn session_from(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: row.get(0)?,
        user_id: row.get(1)?,
        device: row.get(2)?,
        created_at: row.get(3)?,
        last_seen_at: row.get(4)?,
        expires_at: row.get(5)?,
        revoked_at: row.get(6)?,
    })
}

const SESSION_SELECT: &str = "SELECT id, user_id, device, created_at, last_seen_at, expires_at, \
     revoked_at FROM sessions";

pub(crate) fn user_exists(conn: &Connection, id: UserId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .exists([id])?)
}

fn load_user(conn: &Connection, id: UserId) -> Result<Option<User>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id, name, role, created_at FROM users WHERE id = ?1")?
        .query_row([id], |row| user_from(row, 0))
        .optional()?)
}

fn load_session(conn: &Connection, id: SessionId) -> Result<Option<Session>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{SESSION_SELECT} WHERE id = ?1"))?
        .query_row([id], session_from)
        .optional()?)
}

fn insert_user(
    conn: &Connection,
    name: &str,
    password_hash: &str,
    role: Role,
    now: Millis,
) -> Result<User, StoreError> {
    conn.prepare_cached(
        "INSERT INTO users (name, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![name, password_hash, role, now])
    .map_err(name_taken_or)?;
    Ok(User {
        id: conn.last_insert_rowid(),
        name: name.to_owned(),
        role,
        created_at: now,
    })
}

/// Records an administrative action in the transaction that does it.
pub(crate) fn insert_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, action, user_id, invite_id, message_id, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        entry.at,
        entry.actor,
        entry.action,
        entry.user,
        entry.invite,
        entry.message,
        entry.detail
    ])?;
    Ok(())
}

/// The log entries of a new user joining the rooms for everyone.
fn joined_everyone_rooms((user, rooms): &(User, Vec<RoomId>)) -> Vec<LogEntry<'static>> {
    rooms
        .iter()
        .map(|&room| LogEntry::Joined {
            room,
            user: user.id,
        })
        .collect()
}

impl Sqlite {
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.read(move |conn| load_user(conn, id)).await
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, name, role, created_at, password_hash, disabled_at IS NOT NULL \
                     FROM users WHERE name = ?1",
                )?
                .query_row([name], |row| {
                    Ok(Credentials {
                        user: user_from(row, 0)?,
                        password_hash: row.get(4)?,
                        disabled: row.get(5)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, name, role, created_at FROM users ORDER BY id")?;
            let users = stmt
                .query_map([], |row| user_from(row, 0))?
                .collect::<Result<_, _>>()?;
            Ok(users)
        })
        .await
    }

    pub async fn has_owner(&self) -> Result<bool, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM users WHERE role = 'owner' LIMIT 1")?
                .exists([])?)
        })
        .await
    }

    pub async fn session_by_token_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<Session>, StoreError> {
        let hash = *hash;
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!("{SESSION_SELECT} WHERE token_hash = ?1"))?
                .query_row([&hash], session_from)
                .optional()?)
        })
        .await
    }

    pub async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.read(move |conn| load_session(conn, id)).await
    }

    pub async fn sessions_of(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{SESSION_SELECT} WHERE user_id = ?1 AND revoked_at IS NULL \
                 ORDER BY created_at DESC, id DESC"
            ))?;
            let sessions = stmt
                .query_map([user], session_from)?
                .collect::<Result<_, _>>()?;
            Ok(sessions)
        })
        .await
    }

    pub async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        now: Millis,
    ) -> Result<User, StoreError> {
        let name = name.to_owned();
        let password_hash = password_hash.to_owned();
        self.write_logged(
            move |conn| {
                let user = insert_user(conn, &name, &password_hash, role, now)?;
                let rooms = join_everyone_rooms(conn, user.id, now)?;
                Ok((user, rooms))
            },
            joined_everyone_rooms,
        )
        .await
        .map(|(user, _)| user)
    }

    pub async fn create_invite(&self, invite: NewInvite) -> Result<InviteId, StoreError> {
        self.write(move |conn| {
            if let Some(creator) = invite.created_by
                && !user_exists(conn, creator)?
            {
                return Err(StoreError::NotFound);
            }
            conn.prepare_cached(
                "INSERT INTO invites (code_hash, created_by, created_at, expires_at, max_uses) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                invite.code_hash,
                invite.created_by,
                invite.created_at,
                invite.expires_at,
                invite.max_uses
            ])?;
            let id = conn.last_insert_rowid();
            let mut entry = AuditEntry::new(
                invite.created_at,
                invite.created_by,
                crate::AuditAction::InviteCreated,
            );
            entry.invite = Some(id);
            insert_audit(conn, &entry)?;
            Ok(id)
        })
        .await
    }

    pub async fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, created_by, created_at, expires_at, max_uses, uses, last_used_at, \
                 revoked_at FROM invites ORDER BY id DESC LIMIT ?1",
            )?;
            let invites = stmt
                .query_map([crate::AUDIT_PAGE], |row| {
                    Ok(Invite {
                        id: row.get(0)?,
                        created_by: row.get(1)?,
                        created_at: row.get(2)?,
                        expires_at: row.get(3)?,
                        max_uses: row.get(4)?,
                        uses: row.get(5)?,
                        last_used_at: row.get(6)?,
                        revoked_at: row.get(7)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(invites)
        })
        .await
    }

    pub async fn revoke_invite(
        &self,
        actor: Option<UserId>,
        id: InviteId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let revoked: Option<Option<Millis>> = conn
                .prepare_cached("SELECT revoked_at FROM invites WHERE id = ?1")?
                .query_row([id], |row| row.get(0))
                .optional()?;
            match revoked {
                None => return Err(StoreError::NotFound),
                Some(Some(_)) => return Ok(false),
                Some(None) => {}
            }
            conn.prepare_cached("UPDATE invites SET revoked_at = ?2 WHERE id = ?1")?
                .execute(params![id, now])?;
            let mut entry = AuditEntry::new(now, actor, crate::AuditAction::InviteRevoked);
            entry.invite = Some(id);
            insert_audit(conn, &entry)?;
            Ok(true)
        })
        .await
    }

    pub async fn members_for_admin(&self, now: Millis) -> Result<Vec<Member>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT u.id, u.name, u.role, u.created_at, u.disabled_at, \
                 (SELECT count(*) FROM sessions s WHERE s.user_id = u.id \
                    AND s.revoked_at IS NULL AND s.expires_at > ?1), \
                 (SELECT max(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id) \
                 FROM users u ORDER BY u.id",
            )?;
            let members = stmt
                .query_map([now], |row| {
                    Ok(Member {
                        user: user_from(row, 0)?,
                        disabled_at: row.get(4)?,
                        live_sessions: row.get(5)?,
                        last_seen_at: row.get(6)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(members)
        })
        .await
    }

    pub async fn manage_member(
        &self,
        actor: Option<UserId>,
        user: UserId,
        action: MemberAction,
        now: Millis,
    ) -> Result<Managed, StoreError> {
        self.write_logged(
            move |conn| {
                let (target, disabled): (User, bool) = conn
                    .prepare_cached(
                        "SELECT id, name, role, created_at, disabled_at IS NOT NULL \
                         FROM users WHERE id = ?1",
                    )?
                    .query_row([user], |row| Ok((user_from(row, 0)?, row.get(4)?)))
                    .optional()?
                    .ok_or(StoreError::NotFound)?;
                let owners: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM users WHERE role = 'owner' AND disabled_at IS NULL",
                    )?
                    .query_row([], |row| row.get(0))?;
                let owners = u64::try_from(owners).unwrap_or(0);
                if !member_action(actor, &target, disabled, owners, &action)? {
                    return Ok(Managed {
                        changed: false,
                        revoked: Vec::new(),
                    });
                }
                match &action {
                    MemberAction::Disable => conn
                        .prepare_cached("UPDATE users SET disabled_at = ?2 WHERE id = ?1")?
                        .execute(params![user, now])?,
                    MemberAction::Enable => conn
                        .prepare_cached("UPDATE users SET disabled_at = NULL WHERE id = ?1")?
                        .execute([user])?,
                    MemberAction::ResetPassword { password_hash } => conn
                        .prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?
                        .execute(params![user, password_hash])?,
                    MemberAction::SetRole(role) => conn
                        .prepare_cached("UPDATE users SET role = ?2 WHERE id = ?1")?
                        .execute(params![user, role])?,
                };
                let revoked = if action.ends_sessions() {
                    let mut stmt = conn.prepare_cached(
                        "UPDATE sessions SET revoked_at = ?2 \
                         WHERE user_id = ?1 AND revoked_at IS NULL RETURNING id",
                    )?;
                    let mut ids = stmt
                        .query_map(params![user, now], |row| row.get(0))?
                        .collect::<Result<Vec<SessionId>, _>>()?;
                    ids.sort_unstable();
                    ids
                } else {
                    Vec::new()
                };
                let (what, detail) = action.audited();
                let mut entry = AuditEntry::new(now, actor, what);
                entry.user = Some(user);
                entry.detail = detail.map(str::to_owned);
                insert_audit(conn, &entry)?;
                Ok(Managed {
                    changed: true,
                    revoked,
                })
            },
            move |managed: &Managed| {
                managed
                    .revoked
                    .iter()
                    .map(|&session| LogEntry::SessionEnded { user, session })
                    .collect()
            },
        )
        .await
    }

    pub async fn sessions_revoked_since(
        &self,
        since: Millis,
    ) -> Result<Vec<(UserId, SessionId, Millis)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT user_id, id, revoked_at FROM sessions \
                 WHERE revoked_at IS NOT NULL AND revoked_at >= ?1 ORDER BY revoked_at, id",
            )?;
            let revoked = stmt
                .query_map([since], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<_, _>>()?;
            Ok(revoked)
        })
        .await
    }

    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at, actor, action, user_id, invite_id, message_id, detail \
                 FROM audit ORDER BY id DESC LIMIT ?1",
            )?;
            let entries = stmt
                .query_map([limit], |row| {
                    Ok(AuditEntry {
                        id: row.get(0)?,
                        at: row.get(1)?,
                        actor: row.get(2)?,
                        action: row.get(3)?,
                        user: row.get(4)?,
                        invite: row.get(5)?,
                        message: row.get(6)?,
                        detail: row.get(7)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(entries)
        })
        .await
    }

    pub async fn register_with_invite(
        &self,
        code_hash: [u8; 32],
        name: &str,
        password_hash: &str,
        now: Millis,
    ) -> Result<User, StoreError> {
        let name = name.to_owned();
        let password_hash = password_hash.to_owned();
        self.write_logged(
            move |conn| {
                let usable = conn
                    .prepare_cached(
                        "SELECT 1 FROM invites WHERE code_hash = ?1 AND revoked_at IS NULL \
                         AND uses < max_uses AND (expires_at IS NULL OR expires_at > ?2)",
                    )?
                    .exists(params![code_hash, now])?;
                if !usable {
                    return Err(StoreError::InviteInvalid);
                }
                // Creating the user first: if the name is taken the invite is not touched at all.
                let user = insert_user(conn, &name, &password_hash, Role::Member, now)?;
                conn.prepare_cached(
                    "UPDATE invites SET uses = uses + 1, last_used_at = ?2 WHERE code_hash = ?1",
                )?
                .execute(params![code_hash, now])?;
                let rooms = join_everyone_rooms(conn, user.id, now)?;
                Ok((user, rooms))
            },
            joined_everyone_rooms,
        )
        .await
        .map(|(user, _)| user)
    }

    pub async fn create_session(
        &self,
        user: UserId,
        token_hash: [u8; 32],
        device: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<Session, StoreError> {
        let device = device.to_owned();
        self.write(move |conn| {
            if !user_exists(conn, user)? {
                return Err(StoreError::NotFound);
            }
            conn.prepare_cached(
                "INSERT INTO sessions (user_id, token_hash, device, created_at, last_seen_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            )?
            .execute(params![user, token_hash, device, now, expires_at])?;
            Ok(Session {
                id: conn.last_insert_rowid(),
                user_id: user,
                device,
                created_at: now,
                last_seen_at: now,
                expires_at,
                revoked_at: None,
            })
        })
        .await
    }

    pub async fn touch_session(&self, id: SessionId, now: Millis) -> Result<(), StoreError> {
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) WHERE id = ?1",
                )?
                .execute(params![id, now])?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    pub async fn revoke_session(
        &self,
        user: UserId,
        id: SessionId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.write_logged(
            move |conn| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE sessions SET revoked_at = ?3 \
                     WHERE id = ?2 AND user_id = ?1 AND revoked_at IS NULL",
                    )?
                    .execute(params![user, id, now])?;
                Ok(changed == 1)
            },
            move |revoked: &bool| {
                if *revoked {
                    vec![LogEntry::SessionEnded { user, session: id }]
                } else {
                    Vec::new()
                }
            },
        )
        .await
    }

    pub async fn revoke_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        now: Millis,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.write_logged(
            move |conn| {
                let mut stmt = conn.prepare_cached(
                    "UPDATE sessions SET revoked_at = ?3 \
                 WHERE user_id = ?1 AND id != ?2 AND revoked_at IS NULL AND expires_at > ?3 \
                 RETURNING id",
                )?;
                let mut ids = stmt
                    .query_map(params![user, keep, now], |row| row.get(0))?
                    .collect::<Result<Vec<SessionId>, _>>()?;
                ids.sort_unstable();
                Ok(ids)
            },
            move |ids: &Vec<SessionId>| {
                ids.iter()
                    .map(|&session| LogEntry::SessionEnded { user, session })
                    .collect()
            },
        )
        .await
    }
}
