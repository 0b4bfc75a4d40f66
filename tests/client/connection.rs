//! A connection that never loses a message.

use std::time::Instant;

use tidings_client::{ClientEvent, ConnectionState};
use tidings_proto::v1::{ClientFrame, Message, PresenceStatus, ServerFrame};
use tidings_tests::{TestClient, TestServer, WAIT};

/// Waits until `client`'s cache holds `count` messages of `room`; returns them, oldest first.
async fn cached(client: &mut TestClient, room: i64, count: usize) -> Vec<Message> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = client.client.history(room, None, 500).await.unwrap();
        if page.messages.len() >= count {
            return page.messages;
        }
        // Not there yet: wait for the next message to reach this client.
        let next = tokio::time::timeout_at(deadline, client.events.recv()).await;
        assert!(
            next.is_ok(),
            "{} of {count} messages cached",
            page.messages.len()
        );
    }
}

/// Waits until `client`'s outbox is empty.
async fn drained(client: &mut TestClient) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = client.client.outbox().await.unwrap();
        if left.is_empty() {
            return;
        }
        let next = tokio::time::timeout_at(deadline, client.events.recv()).await;
        assert!(next.is_ok(), "outbox not drained: {left:?}");
    }
}

#[tokio::test]
async fn a_server_restart_mid_conversation_loses_and_duplicates_nothing() {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    let mut bo = TestClient::new(&server, "bo").await;
    let mut cy = TestClient::new(&server, "cy").await;
    let owner = server.owner().await;
    let room = owner.create_room("ops").await.room.id;
    for c in [&ana, &bo, &cy] {
        c.client.join_room(room).await.unwrap();
    }
    for c in [&mut ana, &mut bo, &mut cy] {
        c.online().await;
    }
    // Before the restart.
    for i in 0..5 {
        ana.client.send(room, &format!("ana {i}")).await.unwrap();
        bo.client.send(room, &format!("bo {i}")).await.unwrap();
    }
    cached(&mut cy, room, 10).await;

    // The server goes away mid-conversation; sends keep going into the outboxes.
    let (dir, config, addr) = server.stop().await;
    for c in [&mut ana, &mut bo, &mut cy] {
        c.until("offline", |e| {
            matches!(e, ClientEvent::State(ConnectionState::Offline { .. }))
        })
        .await;
    }
    for i in 5..10 {
        ana.client.send(room, &format!("ana {i}")).await.unwrap();
        bo.client.send(room, &format!("bo {i}")).await.unwrap();
    }
    assert_eq!(ana.client.outbox().await.unwrap().len(), 5);

    // A new server on the same address and data dir: everyone comes back by themselves.
    let server = TestServer::serve_again(dir, config, addr).await;
    let mut all = Vec::new();
    for c in [&mut ana, &mut bo, &mut cy] {
        c.online().await;
        all.push(cached(c, room, 20).await);
    }
    for c in [&mut ana, &mut bo] {
        drained(c).await;
    }
    // The server holds each message once, in each author's order; every client the same list.
    let page: tidings_proto::v1::HistoryPage = owner
        .at(&server)
        .get(&format!("/api/rooms/{room}/messages?limit=200"))
        .await;
    assert_eq!(page.messages.len(), 20, "stored exactly once");
    for author in ["ana", "bo"] {
        let order: Vec<String> = page
            .messages
            .iter()
            .filter(|m| m.author.name == author)
            .map(|m| m.body.clone())
            .collect();
        let expected: Vec<String> = (0..10).map(|i| format!("{author} {i}")).collect();
        assert_eq!(order, expected);
    }
    for cache in &all {
        assert_eq!(
            cache, &page.messages,
            "every client has the server's history"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_restarted_with_a_full_outbox_still_delivers_it() {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    let bo = server.user("bo").await;
    let room = bo.create_room("ops").await.room.id;
    ana.client.join_room(room).await.unwrap();
    ana.online().await;

    let (dir, config, addr) = server.stop().await;
    ana.until("offline", |e| {
        matches!(e, ClientEvent::State(ConnectionState::Offline { .. }))
    })
    .await;
    ana.client.send(room, "written offline").await.unwrap();
    ana.client.set_draft(room, "half a thought").await.unwrap();
    // The app quits and starts again while the server is still down.
    let mut ana = ana.reopen();
    assert_eq!(ana.client.outbox().await.unwrap().len(), 1);
    let server = TestServer::serve_again(dir, config, addr).await;
    let sent = ana
        .until("sent", |e| matches!(e, ClientEvent::Sent { .. }))
        .await;
    let ClientEvent::Sent { message_id, .. } = sent else {
        unreachable!()
    };
    let page: tidings_proto::v1::HistoryPage = bo
        .at(&server)
        .get(&format!("/api/rooms/{room}/messages"))
        .await;
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].id, message_id);
    assert_eq!(page.messages[0].body, "written offline");
    assert!(ana.client.outbox().await.unwrap().is_empty());
    assert_eq!(
        ana.client.draft(room).await.unwrap().as_deref(),
        Some("half a thought")
    );
    server.stop().await;
}

#[tokio::test]
async fn the_feed_resumes_after_a_restart_and_alerts_for_what_was_missed() {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    let bo = server.user("bo").await;
    let room = bo.create_room("ops").await.room.id;
    ana.client.join_room(room).await.unwrap();
    ana.client.refresh_rooms().await.unwrap();
    ana.online().await;
    tidings_tests::post_message(&bo, room, "b1", "before").await;
    ana.until("first notification", |e| {
        matches!(e, ClientEvent::Notified(_))
    })
    .await;

    let server = server.restart().await;
    let bo = bo.at(&server);
    tidings_tests::post_message(&bo, room, "b2", "after @ana").await;
    let ClientEvent::Notified(note) = ana
        .until("notification after the restart", |e| {
            matches!(e, ClientEvent::Notified(n) if n.message_id > 0 && n.body.contains("after"))
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(note.room, room);
    // Two alerts, no duplicate: the recorder saw exactly the two messages.
    let shown = ana.notes.shown();
    let ids: Vec<i64> = shown.iter().map(|n| n.message_id).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "no alert twice: {shown:?}");
    let started = Instant::now();
    cached(&mut ana, room, 2).await;
    assert!(started.elapsed() < WAIT);
    server.stop().await;
}

#[tokio::test]
async fn a_connect_reports_who_is_online_among_the_people_sharing_a_room() {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    ana.online().await;
    let ana_id = ana.client.account().unwrap().user.id;
    // Carol is online too, but shares no room with bo: her presence is not his to see.
    let mut carol = TestClient::new(&server, "carol").await;
    carol.online().await;
    let carol_id = carol.client.account().unwrap().user.id;
    let mut bo = TestClient::new(&server, "bo").await;
    bo.online().await;
    bo.client.open_dm("ana").await.unwrap();
    // A new DM tells each side that the other is online.
    let ClientEvent::Presence { user, status } = bo
        .until(
            "ana's presence",
            |e| matches!(e, ClientEvent::Presence { user, .. } if user.name == "ana"),
        )
        .await
    else {
        unreachable!()
    };
    assert_eq!((user.id, status), (ana_id, PresenceStatus::Online));
    let mut bo = bo.reopen();
    let ClientEvent::Online(users) = bo
        .until("who is online", |e| matches!(e, ClientEvent::Online(_)))
        .await
    else {
        unreachable!()
    };
    assert!(users.contains(&ana_id), "{users:?}");
    assert!(!users.contains(&carol_id), "{users:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_history_page_fetched_during_a_paged_sync_skips_nothing() {
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_second = 100_000;
        config.limits.message_burst = 100_000;
    })
    .await;
    let mut ana = TestClient::new(&server, "ana").await;
    let bo = server.user("bo").await;
    let ops = bo.create_room("ops").await.room.id;
    let dev = bo.create_room("dev").await.room.id;
    let ana_http = server.login("ana", tidings_tests::PASSWORD).await;
    ana_http.join(ops).await;
    ana_http.join(dev).await;
    ana.client.refresh_rooms().await.unwrap();
    ana.online().await;
    // Ana closes the app; Bo writes 1,100 messages in each room meanwhile: the sync that follows
    // takes five pages of 500.
    ana.client.shutdown();
    const EACH: usize = 1100;
    let mut chat = bo.chat().await;
    for chunk in 0..(2 * EACH / 100) {
        for i in chunk * 100..(chunk + 1) * 100 {
            let room = if i % 2 == 0 { ops } else { dev };
            chat.send(&ClientFrame::Send {
                room,
                client_id: format!("{i:032}"),
                body: format!("m{i}"),
                reply_to: None,
                attachments: Vec::new(),
            })
            .await;
        }
        let mut acks = 0;
        while acks < 100 {
            if let ServerFrame::Ack { .. } = chat.next().await {
                acks += 1;
            }
        }
    }

    // Back: while the first page of the sync is being saved, Ana opens #dev, whose newest page
    // comes from the server — ids far ahead of what the sync has reached in #ops.
    let mut ana = ana.reopen();
    ana.until_lagging("the sync's first message", WAIT, |e| {
        matches!(e, ClientEvent::Message(_))
    })
    .await;
    let page = ana.client.history(dev, None, 50).await.unwrap();
    assert_eq!(
        page.messages.last().map(|m| m.body.as_str()),
        Some(format!("m{}", 2 * EACH - 1).as_str())
    );
    ana.until_lagging("the end of the sync", 3 * WAIT, |e| {
        matches!(e, ClientEvent::Synced { .. })
    })
    .await;

    // Every message of both rooms reached the cache, the server's list exactly.
    for room in [ops, dev] {
        let cached = ana
            .client
            .cached_history(room, None, 2 * EACH as u32)
            .await
            .unwrap()
            .messages;
        let stored: tidings_proto::v1::HistoryPage = bo
            .get(&format!("/api/rooms/{room}/messages?limit=200"))
            .await;
        assert_eq!(cached.len(), EACH, "room {room}: every message cached");
        assert_eq!(
            cached[EACH - stored.messages.len()..],
            stored.messages[..],
            "room {room}: the cache ends as the server's history does"
        );
    }
    server.stop().await;
}
