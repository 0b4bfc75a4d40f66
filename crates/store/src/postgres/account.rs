//! Accounts on PostgreSQL: users, invites, sessions.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::room::join_everyone_rooms;
use super::{Postgres, get, log_change, role};
use crate::error::pg_name_taken_or;
use crate::{LogEntry, Millis, Role, Session, SessionId, StoreError, User, UserId};

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

    pub async fn user_by_name(&self, name: &str) -> Result<Option<(User, String)>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT id, name, role, created_at, password_hash FROM users \
                 WHERE lower(name) = lower($1)",
            )
            .await?;
        c.query_opt(&stmt, &[&name])
            .await?
            .map(|row| Ok((user_from(&row, 0)?, get(&row, 4)?)))
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

    pub async fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StoreError> {
        let c = self.writable().await?;
        let stmt = c
            .prepare_cached("UPDATE users SET password_hash = $2 WHERE id = $1")
            .await?;
        if c.execute(&stmt, &[&user, &password_hash]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn create_invite(
        &self,
        code_hash: [u8; 32],
        created_by: Option<UserId>,
        now: Millis,
        expires_at: Option<Millis>,
    ) -> Result<(), StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        if let Some(creator) = created_by
            && !user_exists(&tx, creator).await?
        {
            return Err(StoreError::NotFound);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO invites (code_hash, created_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .await?;
        tx.execute(
            &stmt,
            &[&code_hash.as_slice(), &created_by, &now, &expires_at],
        )
        .await?;
        tx.commit().await?;
        Ok(())
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
                "SELECT 1 FROM invites WHERE code_hash = $1 AND used_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2) FOR UPDATE",
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
            .prepare_cached("UPDATE invites SET used_by = $2, used_at = $3 WHERE code_hash = $1")
            .await?;
        tx.execute(&stmt, &[&code_hash.as_slice(), &user.id, &now])
            .await?;
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
