//! The account this file belongs to: the server, the user and the session's token.

use rusqlite::OptionalExtension;
use tidings_proto::v1::{SessionId, UserRef};

use super::{LocalError, LocalStore};

/// Who this local store belongs to and how to reach their server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The server's base URL, e.g. `http://127.0.0.1:7878` (no trailing slash).
    pub server: String,
    /// The signed-in user.
    pub user: UserRef,
    /// The session's bearer token; `None` while the session is locked.
    pub token: Option<String>,
    /// The session's id, kept while locked so the UI can name the session that ended.
    pub session: Option<SessionId>,
}

impl LocalStore {
    /// The account this file belongs to, if one was saved.
    pub fn account(&self) -> Result<Option<Account>, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT server, user_id, user_name, token, session_id FROM account
                 WHERE singleton = 1",
            )?;
            let account = stmt
                .query_row([], |row| {
                    Ok(Account {
                        server: row.get(0)?,
                        user: UserRef {
                            id: row.get(1)?,
                            name: row.get(2)?,
                        },
                        token: row.get(3)?,
                        session: row.get(4)?,
                    })
                })
                .optional()?;
            Ok(account)
        })
    }

    /// Saves the account, replacing the one saved before.
    pub fn save_account(&self, account: &Account) -> Result<(), LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT OR REPLACE INTO account
                     (singleton, server, user_id, user_name, token, session_id)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            )?;
            stmt.execute((
                &account.server,
                account.user.id,
                &account.user.name,
                &account.token,
                account.session,
            ))?;
            Ok(())
        })
    }

    /// Drops the token (the session is locked) but keeps everything else.
    pub fn forget_token(&self) -> Result<(), LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("UPDATE account SET token = NULL")?;
            stmt.execute([])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Account {
        Account {
            server: "http://127.0.0.1:7878".to_owned(),
            user: UserRef {
                id: 1,
                name: "alice".to_owned(),
            },
            token: Some("secret-token".to_owned()),
            session: Some(42),
        }
    }

    #[test]
    fn no_account_until_saved() {
        let store = LocalStore::open_in_memory().unwrap();
        assert_eq!(store.account().unwrap(), None);
        // Forgetting the token of no account is harmless.
        store.forget_token().unwrap();
        assert_eq!(store.account().unwrap(), None);
    }

    #[test]
    fn save_replaces_and_forget_token_keeps_the_rest() {
        let store = LocalStore::open_in_memory().unwrap();
        store.save_account(&alice()).unwrap();
        assert_eq!(store.account().unwrap(), Some(alice()));

        let renewed = Account {
            token: Some("another-token".to_owned()),
            session: Some(43),
            ..alice()
        };
        store.save_account(&renewed).unwrap();
        assert_eq!(store.account().unwrap(), Some(renewed.clone()));

        store.forget_token().unwrap();
        assert_eq!(
            store.account().unwrap(),
            Some(Account {
                token: None,
                ..renewed
            })
        );
    }
}
