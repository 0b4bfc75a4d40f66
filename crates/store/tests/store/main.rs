//! The store through its public API. Every test of the interface runs once per backend — on a
//! real SQLite file in a temporary directory, and on a fresh database of a real PostgreSQL server
//! this process starts (see `tidings-engines`) — so both are held to exactly the same answers.

mod account;
mod attachment;
mod change;
mod copy;
mod message;
mod open;
mod ordering;
mod room;
mod search;

use std::path::Path;

use tidings_engines::Postgres;
use tidings_store::{LogEntry, NewInvite, Role, Room, Store, StoreOptions, User};

/// Runs each named `async fn(Store)` as two tests, `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (_dir, store) = crate::sqlite();
                    super::$test(store).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let store = crate::postgres().await;
                    super::$test(store).await;
                }
            )+
        }
    };
}
pub(crate) use on_both;

/// A store in a fresh temporary directory, which lives as long as the returned guard.
pub fn sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_at(&dir.path().join("tidings.db"));
    (dir, store)
}

pub fn open_at(path: &Path) -> Store {
    Store::open(path, StoreOptions::default()).unwrap()
}

/// A store on a new, empty database of this process's PostgreSQL server.
pub async fn postgres() -> Store {
    let url = Postgres::shared().fresh_database().unwrap();
    Store::connect(&url, StoreOptions::default()).await.unwrap()
}

/// What the store's log follower has handed on so far (see `Store::follow`): the message ids, and
/// every entry in order.
pub struct Followed(tokio::sync::watch::Receiver<(Vec<i64>, Vec<String>)>);

impl Followed {
    /// Follows `store`'s log from the start.
    pub fn start(store: &Store) -> Followed {
        let (tx, rx) = tokio::sync::watch::channel((Vec::new(), Vec::new()));
        store
            .follow(0, move |entry| {
                tx.send_modify(|(ids, entries)| match entry {
                    LogEntry::Message(m) => {
                        ids.push(m.id);
                        entries.push(format!("message {}", m.id));
                    }
                    LogEntry::Changed { id, message } => {
                        entries.push(format!("changed {id} of {}", message.id));
                    }
                    other => entries.push(format!("{other:?}")),
                })
            })
            .unwrap();
        Followed(rx)
    }

    /// The ids handed on once there are at least `n` (PostgreSQL's follower runs after the
    /// commit, not before the sender is answered), waiting at most 10 s.
    pub async fn until(&mut self, n: usize) -> Vec<i64> {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.0.wait_for(|(ids, _)| ids.len() >= n),
        )
        .await
        .unwrap_or_else(|_| panic!("the follower did not reach {n} messages"))
        .unwrap()
        .0
        .clone()
    }

    /// The log's entries once `last` is among them, waiting at most 10 s.
    pub async fn entries_through(&mut self, last: &str) -> Vec<String> {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.0
                .wait_for(|(_, entries)| entries.iter().any(|e| e == last)),
        )
        .await
        .unwrap_or_else(|_| panic!("the follower did not reach {last}"))
        .unwrap()
        .1
        .clone()
    }

    /// The log's entries once there are at least `n`: `message ID`, or a change as `Debug` text.
    pub async fn entries(&mut self, n: usize) -> Vec<String> {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.0.wait_for(|(_, entries)| entries.len() >= n),
        )
        .await
        .unwrap_or_else(|_| panic!("the follower did not reach {n} entries"))
        .unwrap()
        .1
        .clone()
    }
}

pub async fn user(store: &Store, name: &str) -> User {
    store
        .create_user(name, &format!("hash-of-{name}"), Role::Member, 1_000)
        .await
        .unwrap()
}

/// An invite of one use by `code`'s bytes.
pub fn invite(code: [u8; 32], by: Option<i64>, at: i64, expires_at: Option<i64>) -> NewInvite {
    NewInvite {
        code_hash: code,
        created_by: by,
        created_at: at,
        expires_at,
        max_uses: 1,
    }
}

pub async fn room(store: &Store, name: &str, creator: &User) -> Room {
    store.create_room(name, creator.id, 1_000).await.unwrap()
}
