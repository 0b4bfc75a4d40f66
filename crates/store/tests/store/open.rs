use crate::on_both;

use rusqlite::Connection;
use tidings_store::{Role, Store, StoreError, StoreOptions};

/// How many migrations `migrations/{which}/` holds: the schema version a fully migrated database
/// of that backend has.
fn migrations(which: &str) -> i64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(which);
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .and_then(|e| e.to_str())
                == Some("sql")
        })
        .count();
    i64::try_from(files).unwrap()
}

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
    assert_eq!(version, migrations("server"));
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
            assert_eq!(supported, migrations("server"));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    // Refusing leaves the database as it was.
    assert_eq!(user_version(&path), 99);
}

async fn reads_see_committed_writes_and_survive_close(store: Store) {
    let ana = super::user(&store, "ana").await;
    assert_eq!(store.user(ana.id).await.unwrap(), Some(ana.clone()));
    store.close().await;
    assert!(matches!(
        store.create_user("bob", "h", Role::Member, 1).await,
        Err(StoreError::WriterGone)
    ));
    assert_eq!(store.user(ana.id).await.unwrap(), Some(ana));
}

on_both!(reads_see_committed_writes_and_survive_close);

/// What a caller's future holds for a store call, whichever backend is behind it: a server's
/// connection task awaits these for as long as it lives, so every idle connection carries the
/// biggest of them. PostgreSQL's are boxed behind the handle (its queries' futures run to
/// kilobytes); this keeps them from creeping back inline.
#[tokio::test]
async fn the_calls_a_connection_awaits_are_small_futures() {
    const MOST: usize = 512;
    let dir = tempfile::tempdir().unwrap();
    let store = super::open_at(&dir.path().join("tidings.db"));
    let sizes = [
        ("session", size_of_val(&store.session(1))),
        (
            "session_by_token_hash",
            size_of_val(&store.session_by_token_hash(&[0; 32])),
        ),
        ("rooms_of", size_of_val(&store.rooms_of(1))),
        ("latest_message_id", size_of_val(&store.latest_message_id())),
        (
            "messages_since",
            size_of_val(&store.messages_since(1, 0, 10)),
        ),
        ("touch_session", size_of_val(&store.touch_session(1, 0))),
        ("is_member", size_of_val(&store.is_member(1, 1))),
    ];
    for (call, size) in sizes {
        assert!(
            size <= MOST,
            "Store::{call}'s future is {size} bytes (at most {MOST})"
        );
    }
}

/// A raw connection to `url`, for looking at (or tampering with) a PostgreSQL store's database.
pub async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connect_migrates_once_and_nodes_starting_together_agree() {
    let url = tidings_engines::Postgres::shared()
        .fresh_database()
        .unwrap();
    // Three nodes starting at once: one migrates, the others wait for it and find it done.
    let (a, b, c) = tokio::join!(
        Store::connect(&url, StoreOptions::default()),
        Store::connect(&url, StoreOptions::default()),
        Store::connect(&url, StoreOptions::default()),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let versions: Vec<i64> = raw(&url)
        .await
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Each migration once.
    assert_eq!(versions, (1..=migrations("postgres")).collect::<Vec<_>>());
    a.create_user("Ana", "h", Role::Owner, 5).await.unwrap();
    assert!(b.has_owner().await.unwrap());
    assert_eq!(c.users().await.unwrap().len(), 1);
    for store in [a, b, c] {
        store.close().await;
    }
    let again = Store::connect(&url, StoreOptions::default()).await.unwrap();
    assert_eq!(again.users().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_from_a_newer_build_is_refused() {
    let url = tidings_engines::Postgres::shared()
        .fresh_database()
        .unwrap();
    Store::connect(&url, StoreOptions::default())
        .await
        .unwrap()
        .close()
        .await;
    let raw = raw(&url).await;
    let versions = async || -> i64 {
        raw.query_one("SELECT count(*) FROM schema_version", &[])
            .await
            .unwrap()
            .get(0)
    };
    let migrated = versions().await;
    raw.execute("INSERT INTO schema_version (version) VALUES (99)", &[])
        .await
        .unwrap();
    match Store::connect(&url, StoreOptions::default()).await {
        Err(StoreError::TooNew { found, supported }) => {
            assert_eq!(found, 99);
            assert_eq!(supported, migrations("postgres"));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert_eq!(
        versions().await,
        migrated + 1,
        "refusing leaves the database as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_is_a_clear_error() {
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/none");
    match Store::connect(&url, StoreOptions::default()).await {
        Err(StoreError::Unavailable(why)) => assert!(!why.is_empty()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        Store::connect("mysql://nope", StoreOptions::default()).await,
        Err(StoreError::Unavailable(_))
    ));
}
