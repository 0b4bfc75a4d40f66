//! The store through its public API, on real SQLite files in temporary directories.

mod account;
mod message;
mod open;
mod room;

use std::path::Path;

use tidings_store::{Role, Room, Store, StoreOptions, User};

/// A store in a fresh temporary directory, which lives as long as the returned guard.
pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_at(&dir.path().join("tidings.db"));
    (dir, store)
}

pub fn open_at(path: &Path) -> Store {
    Store::open(path, StoreOptions::default()).unwrap()
}

pub async fn user(store: &Store, name: &str) -> User {
    store
        .create_user(name, &format!("hash-of-{name}"), Role::Member, 1_000)
        .await
        .unwrap()
}

pub async fn room(store: &Store, name: &str, creator: &User) -> Room {
    store.create_room(name, creator.id, 1_000).await.unwrap()
}
