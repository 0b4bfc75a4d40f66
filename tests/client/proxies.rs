//! The transport ladder through real hostile proxies (Debian's nginx and squid, started by the
//! test): the client finds a rung that works by itself, chats and raises alerts over it with
//! nothing lost, and climbs back to the WebSocket once the network lets it through.

use std::collections::HashSet;
use std::time::Duration;

use tidings_client::{ClientEvent, ConnectionState};
use tidings_proto::v1::TransportKind;
use tidings_tests::proxies::{Nginx, NginxMode, Squid, SquidMode};
use tidings_tests::{Client, TestClient, TestServer, post_message};

/// Quick to give up on a rung and quick to probe: the ladder's own timing, shortened.
fn impatient(options: &mut tidings_client::ClientOptions) {
    options.first_frame_timeout = Duration::from_secs(2);
    options.probe_every = Duration::from_millis(500);
}

/// Waits until the client is online over `kind`.
async fn online_over(client: &mut TestClient, kind: TransportKind, within: Duration) {
    if client.client.state() == (ConnectionState::Online { transport: kind }) {
        return;
    }
    client
        .until_lagging(&format!("online over {kind:?}"), within, |e| {
            matches!(e, ClientEvent::State(ConnectionState::Online { transport }) if *transport == kind)
        })
        .await;
}

/// Posts `count` messages as `from` and waits until `client` has announced each of them once,
/// with one notification for the burst at least.
async fn exchange(client: &mut TestClient, from: &Client, room: i64, tag: &str, count: usize) {
    let notified_before = client.notes.shown().len();
    let mut expected = HashSet::new();
    for i in 0..count {
        let sent = post_message(from, room, &format!("{tag}-{i}"), &format!("{tag} {i}")).await;
        expected.insert(sent.id);
    }
    // Messages and notifications, in whatever order they come (on the WebSocket the feed raises
    // the notifications, independently of the chat).
    let mut seen = HashSet::new();
    let mut notified = false;
    while seen.len() < expected.len() || !notified {
        let event = client
            .until(&format!("{tag} messages and notifications"), |e| {
                matches!(e, ClientEvent::Message(_) | ClientEvent::Notified(_))
            })
            .await;
        match event {
            ClientEvent::Message(m) => {
                assert!(seen.insert(m.id), "{tag}: message {} announced twice", m.id);
                assert!(
                    expected.contains(&m.id),
                    "{tag}: unexpected message {}",
                    m.id
                );
            }
            _ => notified = true,
        }
    }
    assert!(client.notes.shown().len() > notified_before);
    // And the other way: the outbox goes up and is acked.
    let outgoing = client
        .client
        .send(room, &format!("{tag} reply"))
        .await
        .unwrap();
    client
        .until(&format!("{tag} ack"), |e| {
            matches!(e, ClientEvent::Sent { client_id, .. } if *client_id == outgoing.client_id)
        })
        .await;
}

#[tokio::test]
async fn behind_a_buffering_nginx_that_drops_upgrade_the_client_long_polls_then_climbs_back() {
    let server = TestServer::start_with(|c| c.limits.message_burst = 100).await;
    let nginx = Nginx::start(server.addr, NginxMode::Hostile).await;
    let owner = server.owner().await;
    let room = owner.create_room("ops").await.room.id;
    let mut ana = TestClient::via(&server, &nginx.url(), "ana", impatient).await;
    ana.client.join_room(room).await.unwrap();
    // The upgrade is refused, SSE and streaming are held back in nginx's buffers: long-polling
    // is the first rung whose answers arrive.
    online_over(
        &mut ana,
        TransportKind::LongPolling,
        Duration::from_secs(30),
    )
    .await;
    exchange(&mut ana, &owner, room, "buffered", 20).await;

    // The network lets the WebSocket through again: the client climbs back by itself.
    nginx.reconfigure(NginxMode::Friendly);
    online_over(&mut ana, TransportKind::WebSocket, Duration::from_secs(30)).await;
    exchange(&mut ana, &owner, room, "upgraded", 20).await;
    let cached = ana.client.history(room, None, 200).await.unwrap().messages;
    assert_eq!(cached.len(), 42, "every message once, both replies");
    assert!(cached.windows(2).all(|w| w[0].id < w[1].id));
}

#[tokio::test]
async fn through_a_squid_that_refuses_the_tunnel_the_client_uses_sse_then_climbs_back() {
    let server = TestServer::start_with(|c| c.limits.message_burst = 100).await;
    let squid = Squid::start(SquidMode::Hostile).await;
    let owner = server.owner().await;
    let room = owner.create_room("ops").await.room.id;
    let proxy = squid.url();
    let mut ana = TestClient::with_options(&server, "ana", |options| {
        impatient(options);
        options.proxy = Some(proxy);
    })
    .await;
    ana.client.join_room(room).await.unwrap();
    // squid refuses CONNECT to the server's port (so no WebSocket), and passes streams through.
    online_over(&mut ana, TransportKind::Sse, Duration::from_secs(30)).await;
    exchange(&mut ana, &owner, room, "proxied", 20).await;

    squid.reconfigure(SquidMode::Friendly);
    online_over(&mut ana, TransportKind::WebSocket, Duration::from_secs(30)).await;
    exchange(&mut ana, &owner, room, "tunnelled", 20).await;
    let cached = ana.client.history(room, None, 200).await.unwrap().messages;
    assert_eq!(cached.len(), 42, "every message once, both replies");
}
