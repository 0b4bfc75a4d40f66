//! The client core on each rung of the transport ladder, pinned: it chats both ways, raises the
//! notifications the feed would have, locks within a second of a revocation, and — through a
//! relay that cuts its connections at random — ends up with every message exactly once.

use std::time::Duration;

use tidings_client::{ClientEvent, ConnectionState, LockCause};
use tidings_proto::v1::TransportKind;
use tidings_tests::{
    Dice, PASSWORD, Relay, TestClient, TestServer, busy_room, post_message, send_spread,
};
use tokio::time::Instant;

async fn chats_alerts_and_locks_over(kind: TransportKind) {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let room = owner.create_room("ops").await.room.id;
    let mut ana = TestClient::over(&server, "ana", Some(kind)).await;
    ana.client.join_room(room).await.unwrap();
    ana.online().await;
    assert_eq!(
        ana.client.state(),
        ConnectionState::Online { transport: kind }
    );

    // In: a message from someone else reaches the cache and raises one notification.
    let sent = post_message(&owner, room, "o-1", "deploy at five?").await;
    ana.until(
        "the message",
        |e| matches!(e, ClientEvent::Message(m) if m.id == sent.id),
    )
    .await;
    ana.until("its notification", |e| {
        matches!(e, ClientEvent::Notified(_))
    })
    .await;
    assert_eq!(ana.notes.shown().len(), 1, "{kind:?}");

    // Out: the outbox goes up over HTTP and is acked.
    let outgoing = ana.client.send(room, "yes").await.unwrap();
    ana.until(
        "the ack",
        |e| matches!(e, ClientEvent::Sent { client_id, .. } if *client_id == outgoing.client_id),
    )
    .await;

    // Revoked from another device: locked within a second.
    let other = server.login("ana", PASSWORD).await;
    let session = ana.client.account().unwrap().session.unwrap();
    let revoked_at = Instant::now();
    let status = other
        .request(reqwest::Method::DELETE, &format!("/api/sessions/{session}"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    // Every transport but short polling is told at once; a short-polling client finds out at
    // its next poll (the token refused), within the poll interval.
    let (cause, bound) = match kind {
        TransportKind::ShortPolling => (
            LockCause::Rejected,
            server.config.transports.short_poll_interval,
        ),
        _ => (LockCause::Revoked, Duration::ZERO),
    };
    ana.until(
        "locked",
        |e| matches!(e, ClientEvent::Locked(c) if *c == cause),
    )
    .await;
    let took = revoked_at.elapsed();
    assert!(
        took < bound + Duration::from_secs(1),
        "{kind:?}: locked after {took:?}"
    );
}

#[tokio::test]
async fn over_sse_the_client_chats_alerts_and_locks() {
    chats_alerts_and_locks_over(TransportKind::Sse).await;
}

#[tokio::test]
async fn over_json_lines_streaming_the_client_chats_alerts_and_locks() {
    chats_alerts_and_locks_over(TransportKind::Streaming).await;
}

#[tokio::test]
async fn over_long_polling_the_client_chats_alerts_and_locks() {
    chats_alerts_and_locks_over(TransportKind::LongPolling).await;
}

#[tokio::test]
async fn over_short_polling_the_client_chats_alerts_and_locks() {
    chats_alerts_and_locks_over(TransportKind::ShortPolling).await;
}

/// 2,000 messages from three senders while a relay cuts the client's connections 50 times at
/// random moments: the client's cache ends up with each exactly once, and it announced each once.
async fn nothing_lost_across_cuts_over(kind: TransportKind, seed: u64) {
    const MESSAGES: usize = 2_000;
    const CUTS: usize = 50;
    let server = TestServer::start_with(|c| {
        c.limits.messages_per_second = 10_000;
        c.limits.message_burst = 10_000;
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (room, senders) = busy_room(&server).await;
    // The reader talks to the server only through the relay.
    let mut reader = TestClient::via(&server, &relay.url(), "reader", |o| {
        o.transport = Some(kind);
    })
    .await;
    reader.client.join_room(room).await.unwrap();
    reader.online().await;
    let sending = send_spread(senders, room, MESSAGES);
    let mut dice = Dice(seed);
    let mut announced = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut cuts = 0;
    while announced.len() < MESSAGES || cuts < CUTS {
        assert!(
            Instant::now() < deadline,
            "{kind:?}: {} of {MESSAGES} after 90 s",
            announced.len()
        );
        let wait = Duration::from_millis(dice.roll(60));
        match tokio::time::timeout(wait, reader.events.recv()).await {
            Ok(Ok(ClientEvent::Message(m))) => {
                assert!(
                    announced.insert(m.id),
                    "{kind:?}: message {} announced twice",
                    m.id
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => panic!("{kind:?}: events: {err}"),
            Err(_) if cuts < CUTS => {
                relay.cut();
                cuts += 1;
            }
            Err(_) => {}
        }
    }
    for sender in sending {
        sender.await.unwrap();
    }
    let page = reader.client.history(room, None, 200).await.unwrap();
    assert!(page.messages.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(announced.len(), MESSAGES, "{kind:?}");
}

#[tokio::test]
async fn over_long_polling_nothing_is_lost_or_doubled_across_50_cuts() {
    nothing_lost_across_cuts_over(TransportKind::LongPolling, 0x2545_f491).await;
}

#[tokio::test]
async fn over_sse_nothing_is_lost_or_doubled_across_50_cuts() {
    nothing_lost_across_cuts_over(TransportKind::Sse, 0x9e37_79b9).await;
}

/// A server with its WebSocket switched off (behind a proxy that breaks it): a client with no
/// transport pinned is refused the upgrade, takes the next rung, and chats over SSE.
#[tokio::test]
async fn with_the_websocket_switched_off_the_client_comes_online_over_sse() {
    let server = TestServer::start_with(|config| config.transports.websocket = false).await;
    let owner = server.owner().await;
    let room = owner.create_room("ops").await.room.id;
    let mut ana = TestClient::new(&server, "ana").await;
    ana.client.join_room(room).await.unwrap();
    ana.until("online over SSE", |e| {
        matches!(
            e,
            ClientEvent::State(ConnectionState::Online {
                transport: TransportKind::Sse
            })
        )
    })
    .await;
    let sent = post_message(&owner, room, "o-1", "still here").await;
    ana.until(
        "the message",
        |e| matches!(e, ClientEvent::Message(m) if m.id == sent.id),
    )
    .await;
}
