//! Message ids on PostgreSQL follow commit order across nodes, with no gap a reader could skip.
//!
//! The hazard: a client's cursor is the last id it has, so a reader that sees id 12 committed
//! while 11 is still in flight moves past 11 and never reads it. A plain sequence allows exactly
//! that (first test: the negative control); the store's `log_head` counter does not (the others).

use std::time::{Duration, Instant};

use tidings_engines::Postgres;
use tidings_store::{Inserted, NewMessage, Store, StoreOptions};

use super::open::raw;

const PATIENCE: Duration = Duration::from_secs(10);

/// Waits until `n` backends of the database wait on a lock (an event PostgreSQL reports).
async fn until_waiting_on_a_lock(observer: &tokio_postgres::Client, n: i64) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let waiting: i64 = observer
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting >= n {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("no transaction came to wait on the lock");
}

/// The negative control: with ids from a sequence, a transaction that took id 1 and has not
/// committed yet lets a later one commit id 2, and a reader following `id > cursor` sees 2 first.
/// Had it moved its cursor to 2, it would never read 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_plain_sequence_a_reader_sees_an_id_before_an_earlier_one_commits() {
    let url = Postgres::shared().fresh_database().unwrap();
    let setup = raw(&url).await;
    setup
        .batch_execute("CREATE TABLE log (id bigserial PRIMARY KEY, body text NOT NULL)")
        .await
        .unwrap();
    let mut first = raw(&url).await;
    let mut second = raw(&url).await;
    let reader = raw(&url).await;

    let slow = first.transaction().await.unwrap();
    let one: i64 = slow
        .query_one("INSERT INTO log (body) VALUES ('first') RETURNING id", &[])
        .await
        .unwrap()
        .get(0);
    let quick = second.transaction().await.unwrap();
    let two: i64 = quick
        .query_one("INSERT INTO log (body) VALUES ('second') RETURNING id", &[])
        .await
        .unwrap()
        .get(0);
    quick.commit().await.unwrap();
    assert_eq!((one, two), (1, 2));

    let seen: Vec<i64> = reader
        .query("SELECT id FROM log WHERE id > 0 ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(seen, [2], "the reader sees 2 while 1 is in flight: a gap");
    slow.commit().await.unwrap();
    let after_two: i64 = reader
        .query_one("SELECT count(*) FROM log WHERE id > 2", &[])
        .await
        .unwrap()
        .get(0);
    let all: i64 = reader
        .query_one("SELECT count(*) FROM log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        (after_two, all),
        (0, 2),
        "1 filled the gap behind a cursor at 2"
    );
}

/// The same schedule against the store: another node's batch holds ids it has not committed, so
/// this node's message waits for it, and gets the next id only once that batch has committed.
/// Meanwhile a reader sees neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_in_flight_on_another_node_holds_back_the_next_id_until_it_commits() {
    let url = Postgres::shared().fresh_database().unwrap();
    let store = Store::connect(&url, StoreOptions::default()).await.unwrap();
    let ana = super::user(&store, "ana").await;
    let room = super::room(&store, "general", &ana).await;

    // "Node 1", by hand: takes id 1 from the head and inserts, and does not commit yet.
    let mut node1 = raw(&url).await;
    let in_flight = node1.transaction().await.unwrap();
    let one: i64 = in_flight
        .query_one(
            "UPDATE log_head SET last_id = last_id + 1 RETURNING last_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    in_flight
        .execute(
            "INSERT INTO messages (id, room_id, author_id, body, sent_at) \
             VALUES ($1, $2, $3, 'from node 1', 1)",
            &[&one, &room.id, &ana.id],
        )
        .await
        .unwrap();

    // "Node 2": the store. Its batch must wait on the head's row lock.
    let node2 = store.clone();
    let sent = tokio::spawn(async move {
        node2
            .insert_message(NewMessage {
                room_id: room.id,
                author_id: ana.id,
                client_id: Some("c1".into()),
                body: "from node 2".into(),
                sent_at: 2,
                reply_to: None,
                attachments: Vec::new(),
            })
            .await
    });
    let observer = raw(&url).await;
    until_waiting_on_a_lock(&observer, 1).await;
    assert!(!sent.is_finished());
    assert!(
        store
            .messages_since(ana.id, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    in_flight.commit().await.unwrap();
    let two = match tokio::time::timeout(PATIENCE, sent).await.unwrap().unwrap() {
        Ok(Inserted::New(m)) => m.id,
        other => panic!("expected a new message, got {other:?}"),
    };
    assert_eq!(two, one + 1);
    let bodies: Vec<(i64, String)> = store
        .messages_since(ana.id, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id(), m.message().body.clone()))
        .collect();
    assert_eq!(
        bodies,
        [
            (one, "from node 1".to_owned()),
            (two, "from node 2".to_owned())
        ]
    );
}

/// Three nodes with eight concurrent writers each for 10 s, and a reader following the log as a
/// client does (`id > cursor`, cursor = last id read): every page it reads continues its cursor
/// with no gap, and in the end it has read every acknowledged message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_with_eight_writers_each_give_a_follower_contiguous_ids() {
    const NODES: usize = 3;
    const WRITERS: usize = 8;
    const RUN: Duration = Duration::from_secs(10);

    let url = Postgres::shared().fresh_database().unwrap();
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(Store::connect(&url, StoreOptions::default()).await.unwrap());
    }
    let ana = super::user(&nodes[0], "ana").await;
    let room = super::room(&nodes[0], "general", &ana).await;
    // From here on only messages are written: their ids continue the log's head.
    let head: i64 = raw(&url)
        .await
        .query_one("SELECT last_id FROM log_head", &[])
        .await
        .unwrap()
        .get(0);

    let deadline = Instant::now() + RUN;
    let mut writers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for w in 0..WRITERS {
            let node = node.clone();
            writers.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let msg = NewMessage {
                        room_id: room.id,
                        author_id: ana.id,
                        client_id: Some(format!("n{n}w{w}m{i}")),
                        body: format!("node {n} writer {w} message {i}"),
                        sent_at: 1,
                        reply_to: None,
                        attachments: Vec::new(),
                    };
                    match node.insert_message(msg).await.unwrap() {
                        Inserted::New(m) => acked.push(m.id),
                        other => panic!("unexpected {other:?}"),
                    }
                    i += 1;
                }
                acked
            }));
        }
    }

    // The follower reads from its own node while the writers run, and on until it has caught up
    // with the head as it is once they have all stopped.
    let (stopped_tx, stopped) = tokio::sync::watch::channel(false);
    let follower = nodes[1].clone();
    let follow = tokio::spawn(async move {
        let mut cursor = head;
        let mut read = Vec::new();
        let mut pages = 0u64;
        loop {
            let writers_done = *stopped.borrow();
            let page = follower.messages_since(ana.id, cursor, 500).await.unwrap();
            for m in &page {
                assert_eq!(
                    m.id(),
                    cursor + 1,
                    "a gap after {cursor}: the follower would skip it"
                );
                cursor = m.id();
                read.push(m.id());
            }
            pages += 1;
            if writers_done
                && page.is_empty()
                && follower.latest_message_id().await.unwrap() == cursor
            {
                return (read, pages);
            }
            tokio::task::yield_now().await;
        }
    });

    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.unwrap());
    }
    stopped_tx.send(true).unwrap();
    let (read, pages) = tokio::time::timeout(PATIENCE, follow)
        .await
        .expect("the follower did not catch up")
        .unwrap();
    acked.sort_unstable();
    assert!(
        acked.len() > 1000,
        "only {} messages in {RUN:?}",
        acked.len()
    );
    assert_eq!(
        read, acked,
        "the follower read exactly the acknowledged messages"
    );
    let commits: u64 = nodes.iter().map(Store::commits).sum();
    println!(
        "3 nodes x 8 writers, {RUN:?}: {} messages in {commits} commits, \
         followed in {pages} reads",
        acked.len()
    );
    assert!(
        commits < acked.len() as u64,
        "the writers' messages were batched"
    );
}

/// A node's follower hands on what another node commits, in order; when its `LISTEN` connection
/// is killed mid-burst it reconnects and reads on from its cursor: nothing lost, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_hears_every_node_and_survives_losing_its_listen_connection() {
    let url = Postgres::shared().fresh_database().unwrap();
    let writer = Store::connect(&url, StoreOptions::default()).await.unwrap();
    let follower = Store::connect(&url, StoreOptions::default()).await.unwrap();
    let ana = super::user(&writer, "ana").await;
    let room = super::room(&writer, "general", &ana).await;
    let mut followed = super::Followed::start(&follower);
    assert!(
        follower.follow(0, |_| {}).is_err(),
        "one follower per store"
    );

    let (room_id, author_id) = (room.id, ana.id);
    let send = move |i: usize| {
        let writer = writer.clone();
        async move {
            match writer
                .insert_message(NewMessage {
                    room_id,
                    author_id,
                    client_id: Some(format!("c{i}")),
                    body: format!("m{i}"),
                    sent_at: 1,
                    reply_to: None,
                    attachments: Vec::new(),
                })
                .await
                .unwrap()
            {
                Inserted::New(m) => m.id,
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    let mut sent = Vec::new();
    for i in 0..50 {
        sent.push(send(i).await);
    }
    assert_eq!(followed.until(50).await, sent);

    // Kill every LISTEN connection of the database, then send on at once.
    let killed: i64 = raw(&url)
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    let burst = tokio::spawn({
        async move {
            let mut ids = Vec::new();
            for i in 50..100 {
                ids.push(send(i).await);
            }
            ids
        }
    });
    sent.extend(burst.await.unwrap());
    assert_eq!(followed.until(100).await, sent);
}
