//! Several server nodes on one PostgreSQL database: one group, one log, every node's clients
//! served from it.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tidings_proto::v1::{
    ClientFrame, EVENT_LOCK, EVENT_MESSAGE, EVENT_SESSION, HistoryPage, Lock, LockReason,
    MessageAlert, PresenceStatus, ServerFrame, close,
};
use tidings_tests::{Chat, Feed, PASSWORD, TestServer, post_message};

/// The next `n` messages a chat connection receives, by id.
async fn messages(chat: &mut Chat, n: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        if let ServerFrame::Message(m) = chat
            .expect("a message", |f| matches!(f, ServerFrame::Message(_)))
            .await
        {
            got.push((m.id, m.body));
        }
    }
    got
}

/// The next `n` message alerts of a feed, by id.
async fn alerts(feed: &mut Feed, n: usize) -> Vec<i64> {
    let mut got = Vec::new();
    while got.len() < n {
        let alert: MessageAlert = feed.expect(EVENT_MESSAGE).await.json();
        got.push(alert.id);
    }
    got
}

/// Three nodes, three users each on their own node, posting in turn: every client — over the
/// WebSocket and over the SSE feed, whatever its node — receives every message once, in the
/// log's order, and the log has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_every_node_get_every_message_once_in_the_logs_order() {
    let nodes = TestServer::cluster(3).await;
    let ana = nodes[0].user("ana").await;
    let bo = nodes[1].user("bo").await;
    let cy = nodes[2].user("cy").await;
    // A room made on one node is there on the others.
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    cy.join(room).await;

    let mut ana_chat = ana.chat().await;
    let mut bo_chat = bo.chat().await;
    let mut cy_chat = cy.chat().await;
    let mut cy_feed = cy.feed(None);
    // The feed is open once its first event (the session's status) has come.
    cy_feed.expect(EVENT_SESSION).await;

    let senders = [&ana, &bo, &cy];
    let mut sent = Vec::new();
    for i in 0..60 {
        let from = senders[i % 3];
        let m = post_message(from, room, &format!("c{i}"), &format!("m{i}")).await;
        sent.push((m.id, m.body));
    }
    let first = sent[0].0;
    let ids: Vec<i64> = sent.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (first..first + 60).collect::<Vec<_>>(),
        "the log has no gap"
    );

    assert_eq!(messages(&mut ana_chat, 60).await, sent);
    assert_eq!(messages(&mut bo_chat, 60).await, sent);
    assert_eq!(messages(&mut cy_chat, 60).await, sent);
    // cy's new-message feed, on node 2, too (the client's policy drops its own).
    assert_eq!(alerts(&mut cy_feed, ids.len()).await, ids);

    // History is the same read from any node.
    let page: HistoryPage = bo
        .get(&format!("/api/rooms/{room}/messages?limit=100"))
        .await;
    let stored: Vec<(i64, String)> = page.messages.into_iter().map(|m| (m.id, m.body)).collect();
    assert_eq!(stored, sent);
    for node in nodes {
        node.stop().await;
    }
}

/// A client that hops to another node resumes from its cursor there: it gets exactly what it
/// missed, and a send retried on the new node with the same client id is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hopping_nodes_resumes_from_its_cursor_and_a_retried_send_is_stored_once() {
    let nodes = TestServer::cluster(2).await;
    let ana = nodes[0].user("ana").await;
    let bo = nodes[0].user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;

    let mut bo_chat = bo.chat().await;
    let before = post_message(&ana, room, "c1", "before").await;
    assert_eq!(
        messages(&mut bo_chat, 1).await,
        [(before.id, "before".into())]
    );
    drop(bo_chat);

    // While bo is away, ana sends on node 1.
    let ana_there = ana.at(&nodes[1]);
    let missed = post_message(&ana_there, room, "c2", "missed").await;
    // bo comes back on node 1, from its cursor.
    let bo_there = bo.at(&nodes[1]);
    let mut chat = bo_there.chat().await;
    chat.send(&ClientFrame::Sync { since: before.id }).await;
    assert_eq!(messages(&mut chat, 1).await, [(missed.id, "missed".into())]);

    // A send retried on the other node (the ack was lost) is acknowledged as the same message.
    chat.send(&ClientFrame::Send {
        room,
        client_id: "b1".into(),
        body: "once".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await;
    let first = chat
        .expect("ack", |f| matches!(f, ServerFrame::Ack { .. }))
        .await;
    let again = post_message(&bo, room, "b1", "once").await;
    let ServerFrame::Ack { id, .. } = first else {
        unreachable!()
    };
    assert_eq!(again.id, id);
    let page: HistoryPage = ana.get(&format!("/api/rooms/{room}/messages")).await;
    let bodies: Vec<&str> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["before", "missed", "once"]);
    for node in nodes {
        node.stop().await;
    }
}

/// A session revoked through node 0 while it has a chat connection on node 1 and a feed on
/// node 2: both are locked within a second (the feeds poll the session only once a minute here, so
/// the lock came through the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_on_one_node_is_locked_on_the_others_within_a_second() {
    let url = tidings_engines::Postgres::shared()
        .fresh_database()
        .unwrap();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(
            TestServer::start_with(|config| {
                config.store = Some(url.clone());
                config.session.feed_interval = Duration::from_secs(60);
            })
            .await,
        );
    }
    let laptop = nodes[0].user("ana").await;
    let phone = nodes[0].login("ana", PASSWORD).await;
    let mut chat = laptop.at(&nodes[1]).chat().await;
    let mut feed = laptop.at(&nodes[2]).feed(None);
    feed.expect(EVENT_SESSION).await;

    let response = phone
        .request(Method::DELETE, &format!("/api/sessions/{}", laptop.session))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    let (lock, closed) = tokio::join!(
        async {
            let lock: Lock = feed.expect(EVENT_LOCK).await.json();
            (lock.reason, revoked.elapsed())
        },
        async {
            let closed = chat.closed().await;
            (closed.code, revoked.elapsed())
        }
    );
    println!(
        "cluster lock_ms feed {} chat {}",
        lock.1.as_millis(),
        closed.1.as_millis()
    );
    assert_eq!(lock.0, LockReason::Revoked);
    assert_eq!(closed.0, close::SESSION_REVOKED);
    assert!(
        lock.1 < Duration::from_secs(1),
        "feed locked {:?} after",
        lock.1
    );
    assert!(
        closed.1 < Duration::from_secs(1),
        "chat closed {:?} after",
        closed.1
    );
    for node in nodes {
        node.stop().await;
    }
}

/// Joining a room through one node while connected to another: the connection hears the room's
/// messages from the first one committed after the join, and a leave stops them — the nodes
/// apply joins and leaves in the log's order among the messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_through_one_node_takes_effect_on_the_others_in_the_logs_order() {
    let nodes = TestServer::cluster(2).await;
    let ana = nodes[0].user("ana").await;
    let bo = nodes[0].user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    let elsewhere = ana.create_room("elsewhere").await.room.id;
    bo.join(elsewhere).await;
    let mut bo_chat = bo.at(&nodes[1]).chat().await;

    post_message(&ana, room, "a0", "before the join").await;
    bo.join(room).await;
    let after = post_message(&ana, room, "a1", "after the join").await;
    assert_eq!(
        messages(&mut bo_chat, 1).await,
        [(after.id, "after the join".to_owned())]
    );
    let left = bo
        .request(Method::POST, &format!("/api/rooms/{room}/leave"))
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    post_message(&ana, room, "a2", "after the leave").await;
    // A message of a room bo is still in comes next: nothing of the room left came first.
    let marker = post_message(&ana, elsewhere, "e1", "still here").await;
    assert_eq!(
        messages(&mut bo_chat, 1).await,
        [(marker.id, "still here".to_owned())]
    );
    for node in nodes {
        node.stop().await;
    }
}

/// Presence and typing reach the other nodes through Redis; with Redis stopped, chat goes on and
/// only the other nodes' presence is lost; when it returns, presence recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_typing_cross_nodes_through_redis_and_chat_goes_on_without_it() {
    let redis = tidings_engines::Redis::start().unwrap();
    let url = tidings_engines::Postgres::shared()
        .fresh_database()
        .unwrap();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(
            TestServer::start_with(|config| {
                config.store = Some(url.clone());
                config.redis = Some(redis.url());
            })
            .await,
        );
    }
    let ana = nodes[0].user("ana").await;
    let bo = nodes[0].user("bo").await.at(&nodes[1]);
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    let mut ana_chat = ana.chat().await;
    let is_presence = |who: i64, online: bool| {
        move |f: &ServerFrame| {
            matches!(f, ServerFrame::Presence { user, status }
                if user.id == who && (*status == PresenceStatus::Online) == online)
        }
    };

    // bo comes online on node 1: ana, on node 0, hears of it, then of bo's typing.
    let mut bo_chat = bo.chat().await;
    ana_chat
        .expect("bo online", is_presence(bo.user.id, true))
        .await;
    let typing = bo
        .request(Method::POST, &format!("/api/rooms/{room}/typing"))
        .send()
        .await
        .unwrap();
    assert_eq!(typing.status(), StatusCode::NO_CONTENT);
    ana_chat
        .expect(
            "bo typing",
            |f| matches!(f, ServerFrame::Typing { user, .. } if user.name == "bo"),
        )
        .await;

    // Redis goes away: chat goes on, bo's presence is lost on node 0.
    redis.stop();
    let sent = post_message(&ana, room, "r1", "without redis").await;
    assert_eq!(
        messages(&mut bo_chat, 1).await,
        [(sent.id, "without redis".to_owned())]
    );
    ana_chat
        .expect("bo offline", is_presence(bo.user.id, false))
        .await;

    // Redis is back (empty): presence recovers within a tick or two.
    redis.resume().unwrap();
    ana_chat
        .expect("bo online again", is_presence(bo.user.id, true))
        .await;
    for node in nodes {
        node.stop().await;
    }
}

/// PostgreSQL crashes and restarts under a burst of sends through two nodes: sends in flight are
/// either acknowledged and stored or refused (503, retry) and retried with the same client id —
/// never acknowledged and lost — and the nodes reconnect and deliver everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarting_mid_burst_loses_no_acknowledged_message() {
    const SENDS: usize = 300;
    // A server of its own: the restart must not disturb the other tests' databases.
    let pg = tidings_engines::Postgres::start().unwrap();
    let url = pg.fresh_database().unwrap();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(
            TestServer::start_with(|config| {
                config.store = Some(url.clone());
                config.limits.messages_per_second = 100_000;
                config.limits.message_burst = 100_000;
            })
            .await,
        );
    }
    let ana = nodes[0].user("ana").await;
    let bo = nodes[0].user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    let mut bo_chat = bo.at(&nodes[1]).chat().await;

    let senders = [ana.clone(), ana.at(&nodes[1])];
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let poster = {
        let (acked, refused) = (acked.clone(), refused.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            for i in 0..SENDS {
                let client_id = format!("c{i}");
                let mut attempt = 0;
                loop {
                    assert!(Instant::now() < deadline, "send {i} never went through");
                    let from = &senders[(i + attempt) % 2];
                    let response = from
                        .request(Method::POST, &format!("/api/rooms/{room}/messages"))
                        .json(&serde_json::json!({"client_id": client_id, "body": client_id}))
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            let m: tidings_proto::v1::Message = r.json().await.unwrap();
                            acked.lock().unwrap().push((m.id, client_id.clone()));
                            break;
                        }
                        Ok(r) => {
                            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "send {i}");
                            assert!(r.headers().contains_key("retry-after"));
                        }
                        Err(_) => {}
                    }
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    attempt += 1;
                    // A client's backoff, not a wait for an event.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };
    // A third of the way in, PostgreSQL crashes and comes back.
    tokio::time::timeout(Duration::from_secs(30), async {
        while acked.lock().unwrap().len() < SENDS / 3 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("sends before the restart");
    // (The server stays this test's to the end: dropping it stops it.)
    let pg = tokio::task::spawn_blocking(move || {
        pg.restart().unwrap();
        pg
    })
    .await
    .unwrap();
    poster.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), SENDS);
    // Every acknowledged message is stored, under its client id, once.
    let stored: Vec<(i64, String)> = ana
        .whole_history(room)
        .await
        .into_iter()
        .map(|m| (m.id, m.client_id.unwrap_or_default()))
        .collect();
    let mut by_id = acked.clone();
    by_id.sort();
    assert_eq!(stored, by_id, "stored exactly what was acknowledged");
    // bo, on node 1, has every one of them once the nodes are back on the database.
    let mut got = std::collections::BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while got.len() < SENDS {
            if let ServerFrame::Message(m) = bo_chat
                .expect("a message", |f| matches!(f, ServerFrame::Message(_)))
                .await
            {
                got.insert(m.id);
            }
        }
    })
    .await
    .expect("bo got every message");
    let ids: Vec<i64> = by_id.iter().map(|(id, _)| *id).collect();
    assert_eq!(got.into_iter().collect::<Vec<_>>(), ids);
    println!(
        "postgres restart: {SENDS} sent, {} refusals retried",
        refused.load(std::sync::atomic::Ordering::Relaxed)
    );
    for node in nodes {
        node.stop().await;
    }
    drop(pg);
}
