//! Peers that stall — a chat client that stops reading, a connection that never sends its
//! request, a head or a body that trickles in — are let go within their deadlines, the server
//! keeps serving everyone else, and a shutdown ends on time whatever they do.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tidings_proto::v1::{ClientFrame, SendMessage, ServerFrame};
use tidings_tests::{Client, TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::http1::{Raw, feed_request, open_feed};

/// A message body near the largest allowed, so a few dozen fill a socket's buffers.
fn big_body(i: usize) -> String {
    format!("{i:05} {}", "x".repeat(60_000))
}

/// A connection to `server` with a receive buffer as small as the kernel allows: what the server
/// writes to it and it does not read piles up on the server.
async fn small_buffered(server: &TestServer) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    timeout(WAIT, socket.connect(server.addr))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// The next server frame on `chat`, pings and pongs skipped; the connection must stay open.
async fn next_frame(chat: &mut WebSocketStream<TcpStream>) -> ServerFrame {
    loop {
        let message = timeout(WAIT, chat.next())
            .await
            .expect("a frame in time")
            .expect("the connection stays open")
            .expect("a frame");
        if let WsMessage::Text(text) = message {
            return serde_json::from_str(&text).expect("a server frame");
        }
    }
}

/// A chat connection that completes its handshake and then never reads again, on a
/// [`small_buffered`] connection.
async fn stalled_chat(server: &TestServer, user: &Client) -> WebSocketStream<TcpStream> {
    let stream = small_buffered(server).await;
    let request = user.chat_request();
    let (socket, _) = timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .expect("handshake in time")
        .expect("handshake");
    socket
}

/// Posts `count` big messages to `room` over HTTP: far more than the stalled reader's socket
/// buffers hold.
async fn flood(sender: &Client, room: i64, count: usize) {
    for i in 0..count {
        let response = sender
            .request(
                reqwest::Method::POST,
                &format!("/api/rooms/{room}/messages"),
            )
            .json(&SendMessage {
                client_id: None,
                body: big_body(i),
                reply_to: None,
                attachments: Vec::new(),
            })
            .send()
            .await
            .expect("post");
        assert!(response.status().is_success(), "{}", response.status());
    }
}

#[tokio::test(start_paused = true)]
async fn a_chat_client_that_stops_reading_is_let_go_within_its_write_timeout() {
    // One live connection allowed: the stalled client's slot is free again only once the server
    // has really let it go — closed its socket, ended its task.
    let write_timeout = Duration::from_secs(5);
    let probe_every = Duration::from_millis(50);
    let server = TestServer::start_paused(|config| {
        crate::unthrottled(config);
        config.limits.max_connections = 1;
        config.chat.write_timeout = write_timeout;
    })
    .await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = bo.create_room("ops").await.room.id;
    ana.join(room).await;
    let _stalled = stalled_chat(&server, &ana).await;
    let (_refused, head) = open_feed(server.addr, Some(&bo.token), "").await;
    assert!(
        head.starts_with("http/1.1 503"),
        "the slot is taken: {head}"
    );

    flood(&bo, room, 150).await;
    let flooded = Instant::now();
    let mut probe = interval(probe_every);
    probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let (_feed, head) = open_feed(server.addr, Some(&bo.token), "").await;
        if head.starts_with("http/1.1 200 ok\r\n") {
            break;
        }
        assert!(head.starts_with("http/1.1 503"), "{head}");
        assert!(
            flooded.elapsed() <= write_timeout + probe_every,
            "the stalled client still holds its slot {:?} after the flood",
            flooded.elapsed()
        );
        probe.tick().await;
    }
    // Not before: the write had its whole timeout (the flood filled the socket at once).
    assert!(
        flooded.elapsed() >= write_timeout,
        "let go {:?} after the flood",
        flooded.elapsed()
    );
    // Everyone else was served throughout, and still is.
    let page: tidings_proto::v1::HistoryPage =
        bo.get(&format!("/api/rooms/{room}/messages?limit=1")).await;
    assert_eq!(page.messages[0].body, big_body(149));
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_by_its_deadline_whatever_the_peers_do() {
    let drain = Duration::from_secs(5);
    let server = TestServer::start_paused(|config| {
        crate::unthrottled(config);
        config.drain_timeout = drain;
        // Long enough that only the drain deadline can end the stalled writes in time.
        config.chat.write_timeout = Duration::from_secs(60);
        config.limits.head_timeout = Duration::from_secs(60);
        config.limits.send_queue = 4096;
    })
    .await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = bo.create_room("ops").await.room.id;
    ana.join(room).await;
    // A chat client that stopped reading with a full socket, a connection that sent nothing,
    // and two that sent half a request head (one to hyper, one to the feed's own path).
    let _stalled = stalled_chat(&server, &ana).await;
    flood(&bo, room, 150).await;
    let _silent = Raw::connect(server.addr).await;
    let mut half = Raw::connect(server.addr).await;
    half.send(b"GET /api/me HTTP/1.1\r\nHost: 127").await;
    let mut half_feed = Raw::connect(server.addr).await;
    half_feed
        .send(b"GET /api/events HTTP/1.1\r\nHost: 127")
        .await;

    let stopping = Instant::now();
    server.stop().await;
    let took = stopping.elapsed();
    assert_eq!(
        took, drain,
        "stopped {took:?} after the signal; the drain deadline is {drain:?}"
    );
}

/// Reads until the server closes `stream`; returns how long that took. Fails on anything sent.
async fn closed_by_server(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = timeout(WAIT, stream.read(&mut byte))
        .await
        .expect("the server closes the connection in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected the connection closed, got {read:?}"
    );
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_closed_after_the_head_timeout() {
    let head_timeout = Duration::from_secs(5);
    let server = TestServer::start_paused(|config| config.limits.head_timeout = head_timeout).await;
    let mut silent = Raw::connect(server.addr).await;
    let took = closed_by_server(&mut silent.stream).await;
    assert_eq!(took, head_timeout, "closed after {took:?}");
    // And the server still answers a real request.
    let owner = server.owner().await;
    let _: tidings_proto::v1::Me = owner.get("/api/me").await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_request_head_that_trickles_in_is_cut_off_on_every_path() {
    let head_timeout = Duration::from_secs(5);
    let server = TestServer::start_paused(|config| config.limits.head_timeout = head_timeout).await;
    for start in ["GET /api/me HTTP/1.1\r\n", "GET /api/events HTTP/1.1\r\n"] {
        let mut raw = Raw::connect(server.addr).await;
        raw.send(start.as_bytes()).await;
        // One header byte every 50 ms: the head would never be complete.
        let started = Instant::now();
        let every = Duration::from_millis(50);
        let mut trickle = interval(every);
        let mut sent = 0usize;
        let cut_off = loop {
            trickle.tick().await;
            if raw.stream.write_all(b"X").await.is_err() {
                break started.elapsed();
            }
            sent += 1;
            let mut byte = [0u8; 256];
            match raw.stream.try_read(&mut byte) {
                // Closed, or an error answer (408/400) before closing: cut off either way.
                Ok(_) => break started.elapsed(),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break started.elapsed(),
            }
            assert!(
                started.elapsed() < WAIT,
                "{start:?}: still open after {sent} trickled bytes"
            );
        };
        // Seen at the first byte sent after the cut-off, at the deadline to the byte.
        assert!(
            cut_off >= head_timeout && cut_off <= head_timeout + every,
            "{start:?}: cut off after {cut_off:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_body_that_trickles_in_is_cut_off_and_the_server_keeps_serving() {
    let body_timeout = Duration::from_secs(5);
    let server = TestServer::start_paused(|config| config.limits.body_timeout = body_timeout).await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
          content-length: 1000\r\n\r\n{\"name\":",
    )
    .await;
    let started = Instant::now();
    let head = raw.head().await;
    let took = started.elapsed();
    assert!(head.starts_with("http/1.1 4"), "{head}");
    assert_eq!(took, body_timeout, "answered after {took:?}");
    let owner = server.owner().await;
    let _: tidings_proto::v1::Me = owner.get("/api/me").await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn connections_without_a_request_are_capped() {
    let server = TestServer::start_paused(|config| {
        config.limits.max_pending_requests = 4;
        config.limits.head_timeout = Duration::from_secs(60);
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(Raw::connect(server.addr).await);
    }
    // A fifth waits to be accepted while the four are held: its request goes unanswered.
    let mut fifth = Raw::connect(server.addr).await;
    fifth
        .send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let mut byte = [0u8; 1];
    let waiting = tokio::time::timeout(Duration::from_millis(300), fifth.stream.read(&mut byte));
    assert!(waiting.await.is_err(), "the fifth is not served yet");
    for raw in &silent {
        let mut byte = [0u8; 1];
        let open = matches!(
            raw.stream.try_read(&mut byte),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock
        );
        assert!(open, "the four pending connections are still open");
    }
    // A request on one of them completes its head and frees a slot: the fifth is served.
    let mut first = silent.remove(0);
    first
        .send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert!(first.head().await.starts_with("http/1.1 200"));
    assert!(fifth.head().await.starts_with("http/1.1 200"));
    server.stop().await;
}

/// A chat client that stops reading while far more is sent than its socket holds — the rest
/// waits on the server, within the connection's queue cap — and then reads on: it gets every
/// message once and in order, and its connection goes on working.
#[tokio::test]
async fn a_chat_client_that_pauses_gets_everything_once_in_order_when_it_reads_again() {
    let server = TestServer::start_with(crate::unthrottled).await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    let mut paused = stalled_chat(&server, &bo).await;
    // About 12 MB: more than the socket's buffers on both ends, fewer frames than the queue cap
    // (256) beyond them.
    flood(&ana, room, 200).await;
    let posted: Vec<i64> = ana.whole_history(room).await.iter().map(|m| m.id).collect();
    assert_eq!(posted.len(), 200);
    let mut got = Vec::new();
    while got.len() < posted.len() {
        if let ServerFrame::Message(m) = next_frame(&mut paused).await {
            assert_eq!(
                m.body,
                big_body(got.len()),
                "message {} in order",
                got.len()
            );
            got.push(m.id);
        }
    }
    assert_eq!(got, posted);
    // The connection still answers, after everything that waited.
    let last = *posted.last().unwrap();
    let sync = serde_json::to_string(&ClientFrame::Sync { since: last }).unwrap();
    paused
        .send(WsMessage::Text(sync.into()))
        .await
        .expect("send");
    loop {
        match next_frame(&mut paused).await {
            ServerFrame::Synced {
                latest_id,
                has_more,
            } => {
                assert_eq!((latest_id, has_more), (last, false));
                break;
            }
            ServerFrame::Message(m) => panic!("message {} again", m.id),
            _ => {}
        }
    }
    server.stop().await;
}

/// A feed that stops reading while more events come than its socket holds — the rest waits on
/// the server, within the connection's queue cap — and then reads on: every message's event
/// comes once and in order.
#[tokio::test]
async fn a_feed_that_pauses_gets_every_event_once_in_order_when_it_reads_again() {
    let server = TestServer::start_with(|c| {
        crate::unthrottled(c);
        c.limits.send_queue = 4096;
    })
    .await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    let mut feed = Raw::on(small_buffered(&server).await);
    feed.send(feed_request(Some(&bo.token), "").as_bytes())
        .await;
    let head = feed.head().await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    feed.until(b"event: session\n").await;
    // About 6 MB of events (a preview of 140 four-byte characters each), 50 posts at a time,
    // while the feed reads nothing.
    let body = "\u{1F4E3}".repeat(200);
    let keys: Vec<String> = (0..8000).map(|i| format!("k{i}")).collect();
    for chunk in keys.chunks(50) {
        futures_util::future::join_all(
            chunk
                .iter()
                .map(|key| tidings_tests::post_message(&ana, room, key, &body)),
        )
        .await;
    }
    let posted: Vec<i64> = ana.whole_history(room).await.iter().map(|m| m.id).collect();
    assert_eq!(posted.len(), 8000);
    let mut got = Vec::new();
    while got.len() < posted.len() {
        let event = feed.until(b"\n\n").await;
        if !event.contains("event: message\n") {
            continue;
        }
        let id = event
            .lines()
            .find_map(|line| line.strip_prefix("id: "))
            .and_then(|id| id.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("an id in {event:?}"));
        got.push(id);
    }
    assert_eq!(got, posted);
    server.stop().await;
}
