//! Accounts on PostgreSQL: users, invites, sessions.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::room::join_everyone_rooms;
use super::{Postgres, count, get, log_change, role};
use crate::account::member_action;
use crate::error::pg_name_taken_or;
use crate::{
    AuditAction, AuditEntry, Credentials, Invite, InviteId, LogEntry, Managed, Member,
    MemberAction, Millis, NewInvite, Role, Session, SessionId, StoreError, User, UserId,
};

/// A user from the four columns id, name, role, created_at starting at `at`.
pub(super) fn user_from(row: &Row, at: usize) -> Result<User, StoreError> {
    Ok(User {
        id: get(row, at)?,
        name: get(row, at + 1)?,
        role: role(row, at + 2)?,
        created_at: get(row, at + 3)?,
    })
}

fn session_from(row: &Row) -> Result<Session, StoreError> {
    Ok(Session {
        id: get(row, 0)?,
        user_id: get(row, 1)?,
        device: get(row, 2)?,
        created_at: get(row, 3)?,
        last_seen_at: get(row, 4)?,
        expires_at: get(row, 5)?,
        revoked_at: get(row, 6)?,
    })
}

const SESSION_SELECT: &str = "SELECT id, user_id, device, created_at, last_seen_at, expires_at, \
     revoked_at FROM sessions";

pub(super) async fn user_exists(c: &impl GenericClient, id: UserId) -> Result<bool, StoreError> {
    let stmt = c
        .prepare_cached("SELECT 1 FROM users WHERE id = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&id]).await?.is_some())
}

async fn insert_user(
    c: &impl GenericClient,
    name: &str,
    password_hash: &str,
    role: Role,
    now: Millis,
) -> Result<User, StoreError> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO users (name, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .await?;
    let row = c
        .query_one(&stmt, &[&name, &password_hash, &role.as_str(), &now])
        .await
        .map_err(pg_name_taken_or)?;
    Ok(User {
        id: get(&row, 0)?,
        name: name.to_owned(),
        role,
        created_at: now,
    })
}

/// Records an administrative action in the transaction that does it.
pub(super) async fn insert_audit(
    tx: &impl GenericClient,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit (at, actor, action, user_id, invite_id, message_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &entry.at,
            &entry.actor,
            &entry.action.as_str(),
            &entry.user,
            &entry.invite,
            &entry.message,
            &entry.detail,
        ],
    )
    .await?;
    Ok(())
}

impl Postgres {
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT id, name, role, created_at FROM users WHERE id = $1")
            .await?;
        c.query_opt(&stmt, &[&id])
            .await?
            .map(|row| user_from(&row, 0))
            .transpose()
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT id, name, role, created_at, password_hash, disabled_at IS NOT NULL \
                 FROM users WHERE lower(name) = lower($1)",
            )
            .await?;
        c.query_opt(&stmt, &[&name])
            .await?
            .map(|row| {
                Ok(Credentials {
                    user: user_from(&row, 0)?,
                    password_hash: get(&row, 4)?,
                    disabled: get(&row, 5)?,
                })
            })
            .transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT id, name, role, created_at FROM users ORDER BY id")
            .await?;
        c.query(&stmt, &[])
            .await?
            .iter()
            .map(|row| user_from(row, 0))
            .collect()
    }

    pub async fn has_owner(&self) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT 1 FROM users WHERE role = 'owner' LIMIT 1")
            .await?;
        Ok(c.query_opt(&stmt, &[]).await?.is_some())
    }

    pub async fn session_by_token_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<Session>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!("{SESSION_SELECT} WHERE token_hash = $1"))
            .await?;
        c.query_opt(&stmt, &[&hash.as_slice()])
            .await?
            .map(|row| session_from(&row))
            .transpose()
    }

    pub async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!("{SESSION_SELECT} WHERE id = $1"))
            .await?;
        c.query_opt(&stmt, &[&id])
            .await?
            .map(|row| session_from(&row))
            .transpose()
    }

    pub async fn sessions_of(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "{SESSION_SELECT} WHERE user_id = $1 AND revoked_at IS NULL \
                 ORDER BY created_at DESC, id DESC"
            ))
            .await?;
        c.query(&stmt, &[&user])
            .await?
            .iter()
            .map(session_from)
            .collect()
    }

    pub async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        now: Millis,
    ) -> Result<User, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        let user = insert_user(&tx, name, password_hash, role, now).await?;
        join_everyone_rooms(&tx, user.id, now).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn create_invite(&self, invite: NewInvite) -> Result<InviteId, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        if let Some(creator) = invite.created_by
            && !user_exists(&tx, creator).await?
        {
            return Err(StoreError::NotFound);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO invites (code_hash, created_by, created_at, expires_at, max_uses) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .await?;
        let max_uses = i32::try_from(invite.max_uses).unwrap_or(i32::MAX);
        let row = tx
            .query_one(
                &stmt,
                &[
                    &invite.code_hash.as_slice(),
                    &invite.created_by,
                    &invite.created_at,
                    &invite.expires_at,
                    &max_uses,
                ],
            )
            .await?;
        let id: InviteId = get(&row, 0)?;
        let mut entry = AuditEntry::new(
            invite.created_at,
            invite.created_by,
            AuditAction::InviteCreated,
        );
        entry.invite = Some(id);
        insert_audit(&tx, &entry).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT id, created_by, created_at, expires_at, max_uses, uses, last_used_at, \
                 revoked_at FROM invites ORDER BY id DESC LIMIT $1",
            )
            .await?;
        c.query(&stmt, &[&i64::from(crate::AUDIT_PAGE)])
            .await?
            .iter()
            .map(|row| {
                Ok(Invite {
                    id: get(row, 0)?,
                    created_by: get(row, 1)?,
                    created_at: get(row, 2)?,
                    expires_at: get(row, 3)?,
                    max_uses: u32::try_from(get::<i32>(row, 4)?).unwrap_or(0),
                    uses: u32::try_from(get::<i32>(row, 5)?).unwrap_or(0),
                    last_used_at: get(row, 6)?,
                    revoked_at: get(row, 7)?,
                })
            })
            .collect()
    }

    pub async fn revoke_invite(
        &self,
        actor: Option<UserId>,
        id: InviteId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        let stmt = tx
            .prepare_cached("SELECT revoked_at FROM invites WHERE id = $1 FOR UPDATE")
            .await?;
        let row = tx
            .query_opt(&stmt, &[&id])
            .await?
            .ok_or(StoreError::NotFound)?;
        if get::<Option<Millis>>(&row, 0)?.is_some() {
            return Ok(false);
        }
        let stmt = tx
            .prepare_cached("UPDATE invites SET revoked_at = $2 WHERE id = $1")
            .await?;
        tx.execute(&stmt, &[&id, &now]).await?;
        let mut entry = AuditEntry::new(now, actor, AuditAction::InviteRevoked);
        entry.invite = Some(id);
        insert_audit(&tx, &entry).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn members_for_admin(&self, now: Millis) -> Result<Vec<Member>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT u.id, u.name, u.role, u.created_at, u.disabled_at, \
                 (SELECT count(*) FROM sessions s WHERE s.user_id = u.id \
                    AND s.revoked_at IS NULL AND s.expires_at > $1), \
                 (SELECT max(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id) \
                 FROM users u ORDER BY u.id",
            )
            .await?;
        c.query(&stmt, &[&now])
            .await?
            .iter()
            .map(|row| {
                Ok(Member {
                    user: user_from(row, 0)?,
                    disabled_at: get(row, 4)?,
                    live_sessions: u32::try_from(count(row, 5)?).unwrap_or(u32::MAX),
                    last_seen_at: get(row, 6)?,
                })
            })
            .collect()
    }

    pub async fn manage_member(
        &self,
        actor: Option<UserId>,
        user: UserId,
        action: MemberAction,
        now: Millis,
    ) -> Result<Managed, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        // Every owner's row locked, in id order: two owners demoting each other take turns, and
        // the second finds the first is the last one left.
        let stmt = tx
            .prepare_cached(
                "SELECT id FROM users WHERE role = 'owner' OR id = $1 ORDER BY id FOR UPDATE",
            )
            .await?;
        tx.query(&stmt, &[&user]).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT id, name, role, created_at, disabled_at IS NOT NULL, \
                 (SELECT count(*) FROM users WHERE role = 'owner' AND disabled_at IS NULL) \
                 FROM users WHERE id = $1",
            )
            .await?;
        let row = tx
            .query_opt(&stmt, &[&user])
            .await?
            .ok_or(StoreError::NotFound)?;
        let target = user_from(&row, 0)?;
        let disabled: bool = get(&row, 4)?;
        if !member_action(actor, &target, disabled, count(&row, 5)?, &action)? {
            return Ok(Managed {
                changed: false,
                revoked: Vec::new(),
            });
        }
        match &action {
            MemberAction::Disable => {
                let stmt = tx
                    .prepare_cached("UPDATE users SET disabled_at = $2 WHERE id = $1")
                    .await?;
                tx.execute(&stmt, &[&user, &now]).await?
            }
            MemberAction::Enable => {
                let stmt = tx
                    .prepare_cached("UPDATE users SET disabled_at = NULL WHERE id = $1")
                    .await?;
                tx.execute(&stmt, &[&user]).await?
            }
            MemberAction::ResetPassword { password_hash } => {
                let stmt = tx
                    .prepare_cached("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .await?;
                tx.execute(&stmt, &[&user, password_hash]).await?
            }
            MemberAction::SetRole(role) => {
                let stmt = tx
                    .prepare_cached("UPDATE users SET role = $2 WHERE id = $1")
                    .await?;
                tx.execute(&stmt, &[&user, &role.as_str()]).await?
            }
        };
        let mut revoked = Vec::new();
        if action.ends_sessions() {
            let stmt = tx
                .prepare_cached(
                    "UPDATE sessions SET revoked_at = $2 \
                     WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
                )
                .await?;
            revoked = tx
                .query(&stmt, &[&user, &now])
                .await?
                .iter()
                .map(|row| get(row, 0))
                .collect::<Result<Vec<SessionId>, _>>()?;
            revoked.sort_unstable();
            for &session in &revoked {
                log_change(&tx, LogEntry::SessionEnded { user, session }).await?;
            }
        }
        let (what, detail) = action.audited();
        let mut entry = AuditEntry::new(now, actor, what);
        entry.user = Some(user);
        entry.detail = detail.map(str::to_owned);
        insert_audit(&tx, &entry).await?;
        tx.commit().await?;
        Ok(Managed {
            changed: true,
            revoked,
        })
    }

    pub async fn sessions_revoked_since(
        &self,
        since: Millis,
    ) -> Result<Vec<(UserId, SessionId, Millis)>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT user_id, id, revoked_at FROM sessions \
                 WHERE revoked_at IS NOT NULL AND revoked_at >= $1 ORDER BY revoked_at, id",
            )
            .await?;
        c.query(&stmt, &[&since])
            .await?
            .iter()
            .map(|row| Ok((get(row, 0)?, get(row, 1)?, get(row, 2)?)))
            .collect()
    }

    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT id, at, actor, action, user_id, invite_id, message_id, detail \
                 FROM audit ORDER BY id DESC LIMIT $1",
            )
            .await?;
        c.query(&stmt, &[&i64::from(limit)])
            .await?
            .iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: get(row, 0)?,
                    at: get(row, 1)?,
                    actor: get(row, 2)?,
                    action: AuditAction::parse(get(row, 3)?).map_err(StoreError::Unreadable)?,
                    user: get(row, 4)?,
                    invite: get(row, 5)?,
                    message: get(row, 6)?,
                    detail: get(row, 7)?,
                })
            })
            .collect()
    }

    /// The database's size in bytes.
    pub async fn size(&self) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?;
        count(&row, 0)
    }

    pub async fn register_with_invite(
        &self,
        code_hash: [u8; 32],
        name: &str,
        password_hash: &str,
        now: Millis,
    ) -> Result<User, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        // FOR UPDATE: two registrations with one invite take turns, and the second finds it used.
        let stmt = tx
            .prepare_cached(
                "SELECT 1 FROM invites WHERE code_hash = $1 AND revoked_at IS NULL \
                 AND uses < max_uses AND (expires_at IS NULL OR expires_at > $2) FOR UPDATE",
            )
            .await?;
        if tx
            .query_opt(&stmt, &[&code_hash.as_slice(), &now])
            .await?
            .is_none()
        {
            return Err(StoreError::InviteInvalid);
        }
        // Creating the user first: if the name is taken the transaction rolls back, invite unused.
        let user = insert_user(&tx, name, password_hash, Role::Member, now).await?;
        let stmt = tx
            .prepare_cached(
                "UPDATE invites SET uses = uses + 1, last_used_at = $2 WHERE code_hash = $1",
            )
            .await?;
        tx.execute(&stmt, &[&code_hash.as_slice(), &now]).await?;
        join_everyone_rooms(&tx, user.id, now).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn create_session(
        &self,
        user: UserId,
        token_hash: [u8; 32],
        device: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<Session, StoreError> {
        let c = self.writable().await?;
        // The user's row is checked by the insert itself: no row, nothing inserted.
        let stmt = c
            .prepare_cached(
                "INSERT INTO sessions (user_id, token_hash, device, created_at, last_seen_at, \
                 expires_at) SELECT id, $2, $3, $4, $4, $5 FROM users WHERE id = $1 RETURNING id",
            )
            .await?;
        let row = c
            .query_opt(
                &stmt,
                &[&user, &token_hash.as_slice(), &device, &now, &expires_at],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(Session {
            id: get(&row, 0)?,
            user_id: user,
            device: device.to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at,
            revoked_at: None,
        })
    }

    pub async fn touch_session(&self, id: SessionId, now: Millis) -> Result<(), StoreError> {
        let c = self.writable().await?;
        let stmt = c
            .prepare_cached(
                "UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE id = $1",
            )
            .await?;
        if c.execute(&stmt, &[&id, &now]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn revoke_session(
        &self,
        user: UserId,
        id: SessionId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        let stmt = tx
            .prepare_cached(
                "UPDATE sessions SET revoked_at = $3 \
                 WHERE id = $2 AND user_id = $1 AND revoked_at IS NULL",
            )
            .await?;
        let revoked = tx.execute(&stmt, &[&user, &id, &now]).await? == 1;
        if revoked {
            log_change(&tx, LogEntry::SessionEnded { user, session: id }).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    pub async fn revoke_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        now: Millis,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        let stmt = tx
            .prepare_cached(
                "UPDATE sessions SET revoked_at = $3 \
                 WHERE user_id = $1 AND id != $2 AND revoked_at IS NULL AND expires_at > $3 \
                 RETURNING id",
            )
            .await?;
        let mut ids = tx
            .query(&stmt, &[&user, &keep, &now])
            .await?
            .iter()
            .map(|row| get(row, 0))
            .collect::<Result<Vec<SessionId>, _>>()?;
        ids.sort_unstable();
        for &session in &ids {
            log_change(&tx, LogEntry::SessionEnded { user, session }).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }
}
