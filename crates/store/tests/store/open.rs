use rusqlite::Connection;
use tidings_store::{Role, Store, StoreError, StoreOptions};

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

fn schema(path: &std::path::Path) -> Vec<(String, Option<String>)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn fresh_open_migrates_and_reopen_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tidings.db");

    let store = super::open_at(&path);
    assert_eq!(store.latest_message_id().await.unwrap(), 0);
    assert!(!store.has_owner().await.unwrap());
    store.create_user("Ana", "h", Role::Owner, 5).await.unwrap();
    store.close().await;
    drop(store);

    let version = user_version(&path);
    assert_eq!(version, 1);
    let before = schema(&path);
    assert!(before.iter().any(|(name, _)| name == "messages"));

    let store = super::open_at(&path);
    assert!(store.has_owner().await.unwrap());
    assert_eq!(store.users().await.unwrap().len(), 1);
    store.close().await;
    drop(store);
    assert_eq!(user_version(&path), version);
    assert_eq!(schema(&path), before);
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tidings.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();

    match Store::open(&path, StoreOptions::default()) {
        Err(StoreError::TooNew { found, supported }) => {
            assert_eq!(found, 99);
            assert_eq!(supported, 1);
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    // Refusing leaves the database as it was.
    assert_eq!(user_version(&path), 99);
}

#[tokio::test]
async fn reads_see_committed_writes_and_survive_close() {
    let (_dir, store) = super::store();
    let ana = super::user(&store, "ana").await;
    assert_eq!(store.user(ana.id).await.unwrap(), Some(ana.clone()));
    store.close().await;
    assert!(matches!(
        store.create_user("bob", "h", Role::Member, 1).await,
        Err(StoreError::WriterGone)
    ));
    assert_eq!(store.user(ana.id).await.unwrap(), Some(ana));
}
