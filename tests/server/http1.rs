//! The long waits' own HTTP/1 path: a connection whose first request is the feed, a stream or a
//! poll is served without hyper (see the server's `direct` module). These tests speak raw
//! HTTP/1.1 over TCP to see exactly what goes over the wire.
use std::net::SocketAddr;

use tidings_tests::{TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// A raw connection and what has been read from it but not consumed yet.
pub(crate) struct Raw {
    pub(crate) stream: TcpStream,
    buffer: Vec<u8>,
}

impl Raw {
    pub(crate) async fn connect(addr: SocketAddr) -> Raw {
        let stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Raw::on(stream)
    }

    /// Over a connection made elsewhere.
    pub(crate) fn on(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buffer: Vec::new(),
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// Reads until `needle` has arrived; returns everything up to and including it.
    pub(crate) async fn until(&mut self, needle: &[u8]) -> String {
        loop {
            if let Some(at) = self.buffer.windows(needle.len()).position(|w| w == needle) {
                let taken: Vec<u8> = self.buffer.drain(..at + needle.len()).collect();
                return String::from_utf8(taken).expect("UTF-8");
            }
            let mut chunk = [0u8; 4096];
            let n = timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "waiting for {:?}; got {:?}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(&self.buffer)
                    )
                })
                .expect("read");
            assert!(
                n > 0,
                "closed while waiting for {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.buffer)
            );
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// The response head, lower-cased.
    pub(crate) async fn head(&mut self) -> String {
        self.until(b"\r\n\r\n").await.to_ascii_lowercase()
    }

    /// Reads to the end of the stream; returns what came after the consumed part.
    async fn read_to_close(&mut self) -> String {
        let mut rest = std::mem::take(&mut self.buffer);
        timeout(WAIT, self.stream.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection in time")
            .expect("read");
        String::from_utf8(rest).expect("UTF-8")
    }
}

pub(crate) fn feed_request(token: Option<&str>, extra: &str) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{extra}\r\n")
}

/// Opens a connection, asks for the feed and reads the response head.
pub(crate) async fn open_feed(addr: SocketAddr, token: Option<&str>, extra: &str) -> (Raw, String) {
    let mut raw = Raw::connect(addr).await;
    raw.send(feed_request(token, extra).as_bytes()).await;
    let head = raw.head().await;
    (raw, head)
}

#[tokio::test]
async fn a_feed_on_a_fresh_connection_is_a_close_delimited_event_stream() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let (mut raw, head) = open_feed(server.addr, Some(&ana.token), "").await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: text/event-stream"),
        "{head}"
    );
    assert!(head.contains("\r\ncache-control: no-cache\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    // Close-delimited: neither a length nor chunked framing.
    assert!(!head.contains("content-length"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    let opening = raw.until(b"\n\n").await;
    assert!(opening.starts_with("retry: "), "{opening:?}");
    // A message posted now arrives on the stream as an event.
    let room = ana.create_room("ops").await;
    tidings_tests::post_message(&ana, room.room.id, "c-1", "over the wire").await;
    let event = raw.until(b"over the wire").await;
    assert!(event.contains("event: message\n"), "{event:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_feed_asked_for_on_a_kept_alive_connection_is_served_too() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let head = raw.head().await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert_eq!(raw.until(b"ok").await, "ok");
    // Same connection, now the feed: served by the general HTTP path, chunked.
    raw.send(feed_request(Some(&ana.token), "").as_bytes())
        .await;
    let head = raw.head().await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: text/event-stream"),
        "{head}"
    );
    assert!(
        head.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{head}"
    );
    let opening = raw.until(b"\n\n").await;
    assert!(opening.contains("retry: "), "{opening:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_feed_without_a_token_gets_401_with_a_body_and_the_connection_closes() {
    let server = TestServer::start().await;
    let (mut raw, head) = open_feed(server.addr, None, "").await;
    assert!(head.starts_with("http/1.1 401 unauthorized\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a length")
        .trim()
        .parse()
        .expect("a number");
    let body = raw.read_to_close().await;
    assert_eq!(body.len(), length, "{body:?}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(error["code"].is_string(), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn a_feed_request_split_across_writes_is_still_served() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let request = feed_request(Some(&ana.token), "");
    let (first, second) = request.as_bytes().split_at(7);
    let mut raw = Raw::connect(server.addr).await;
    raw.send(first).await;
    raw.send(second).await;
    let head = raw.head().await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(raw.until(b"\n\n").await.contains("retry: "));
    server.stop().await;
}

#[tokio::test]
async fn bad_feed_request_heads_are_refused_and_others_keep_being_served() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    // A header without a colon.
    let (mut raw, head) = open_feed(server.addr, Some(&ana.token), "Not a header\r\n").await;
    assert!(head.starts_with("http/1.1 400 bad request\r\n"), "{head}");
    raw.read_to_close().await;
    // A head over 16 KiB.
    let pad = format!("X-Pad: {}\r\n", "a".repeat(20 * 1024));
    let (_raw, head) = open_feed(server.addr, Some(&ana.token), &pad).await;
    assert!(
        head.starts_with("http/1.1 431 request header fields too large\r\n"),
        "{head}"
    );
    // The server goes on serving feeds.
    let (_raw, head) = open_feed(server.addr, Some(&ana.token), "").await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_frees_its_feed() {
    // One connection allowed: the second feed is served only once the first is gone.
    let server = TestServer::start_with(|config| config.limits.max_connections = 1).await;
    let ana = server.user("ana").await;
    let (first, head) = open_feed(server.addr, Some(&ana.token), "").await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    let (_refused, head) = open_feed(server.addr, Some(&ana.token), "").await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    drop(first);
    // The server notices the hang-up by itself (the feed is idle: nothing is being written).
    let deadline = Instant::now() + WAIT;
    loop {
        let (_next, head) = open_feed(server.addr, Some(&ana.token), "").await;
        if head.starts_with("http/1.1 200 ok\r\n") {
            break;
        }
        assert!(head.starts_with("http/1.1 503"), "{head}");
        assert!(Instant::now() < deadline, "the first feed was never freed");
        // Each refusal is a full round trip; the loop is bounded by the deadline.
    }
    server.stop().await;
}

fn poll_request(token: &str, query: &str, extra: &str) -> String {
    format!(
        "GET /api/poll?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\n{extra}\r\n"
    )
}

/// Reads one answer with a length: its lower-cased head and its body.
async fn answer(raw: &mut Raw) -> (String, String) {
    let head = raw.head().await;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap_or_else(|| panic!("a length: {head}"))
        .trim()
        .parse()
        .expect("a number");
    while raw.buffer.len() < length {
        let mut chunk = [0u8; 4096];
        let n = timeout(WAIT, raw.stream.read(&mut chunk))
            .await
            .expect("the body in time")
            .expect("read");
        assert!(n > 0, "closed inside a body");
        raw.buffer.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = raw.buffer.drain(..length).collect();
    (head, String::from_utf8(body).expect("UTF-8"))
}

#[tokio::test]
async fn polls_keep_their_connection_and_the_first_other_request_on_it_goes_to_hyper() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let room = ana.create_room("ops").await;
    let mut raw = Raw::connect(server.addr).await;
    // An immediate poll: answered with its length, the connection kept.
    raw.send(poll_request(&ana.token, "timeout=0&hello=1", "").as_bytes())
        .await;
    let (head, body) = answer(&mut raw).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    let batch: serde_json::Value = serde_json::from_str(&body).expect("a batch");
    let cursor = batch["cursor"].as_i64().expect("a cursor");
    // A held poll on the same connection, answered by a message.
    raw.send(poll_request(&ana.token, &format!("cursor={cursor}&timeout=25"), "").as_bytes())
        .await;
    tidings_tests::post_message(&ana, room.room.id, "c-1", "held and answered").await;
    let (head, body) = answer(&mut raw).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    assert!(body.contains("held and answered"), "{body}");
    // Anything else on it now is hyper's: a request with a body, then a feed, chunked.
    let frame =
        serde_json::to_string(&tidings_proto::v1::ClientFrame::Typing { room: room.room.id })
            .expect("JSON");
    raw.send(
        format!(
            "POST /api/frames HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{frame}",
            ana.token,
            frame.len()
        )
        .as_bytes(),
    )
    .await;
    let (head, _) = answer(&mut raw).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    raw.send(feed_request(Some(&ana.token), "").as_bytes())
        .await;
    let head = raw.head().await;
    assert!(
        head.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{head}"
    );
    // A poll that asks to close is answered and closed.
    let mut raw = Raw::connect(server.addr).await;
    raw.send(poll_request(&ana.token, "timeout=0", "Connection: close\r\n").as_bytes())
        .await;
    let (head, _) = answer(&mut raw).await;
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert_eq!(raw.read_to_close().await, "");
    server.stop().await;
}

/// Polls at once on new connections until the answer's status line starts with `wanted`; every
/// answer before it must start with `meanwhile`. Bounded by `WAIT`.
async fn until_an_immediate_poll_is(addr: SocketAddr, token: &str, wanted: &str, meanwhile: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut next = Raw::connect(addr).await;
        next.send(poll_request(token, "timeout=0", "Connection: close\r\n").as_bytes())
            .await;
        let (head, _) = answer(&mut next).await;
        if head.starts_with(wanted) {
            return;
        }
        assert!(head.starts_with(meanwhile), "{head}");
        assert!(Instant::now() < deadline, "no {wanted:?} in time");
    }
}

#[tokio::test]
async fn a_client_that_hangs_up_frees_its_held_poll() {
    // One connection allowed: the second poll is served only once the first is gone.
    let server = TestServer::start_with(|config| config.limits.max_connections = 1).await;
    let ana = server.user("ana").await;
    let other = server.user("bea").await;
    let mut first = Raw::connect(server.addr).await;
    first
        .send(poll_request(&ana.token, "timeout=25", "").as_bytes())
        .await;
    // Held (it takes the one place): another user's poll is refused meanwhile.
    until_an_immediate_poll_is(
        server.addr,
        &other.token,
        "http/1.1 503",
        "http/1.1 200 ok\r\n",
    )
    .await;
    drop(first);
    // The server notices the hang-up by itself, long before the poll's 25 s.
    until_an_immediate_poll_is(
        server.addr,
        &other.token,
        "http/1.1 200 ok\r\n",
        "http/1.1 503",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_poll_answer_larger_than_any_buffer_arrives_whole_and_keeps_its_connection() {
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_second = 1000;
        config.limits.message_burst = 1000;
    })
    .await;
    let ana = server.user("ana").await;
    let room = ana.create_room("ops").await;
    // A backlog of 40 messages of 4 KiB: the answer to a poll from the start is 160 KiB and more.
    let body = "x".repeat(4096);
    for i in 0..40 {
        tidings_tests::post_message(&ana, room.room.id, &format!("c-{i}"), &body).await;
    }
    let mut raw = Raw::connect(server.addr).await;
    raw.send(poll_request(&ana.token, "cursor=0&timeout=0", "").as_bytes())
        .await;
    let (head, answer_body) = answer(&mut raw).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(answer_body.len() > 160 * 1024, "{}", answer_body.len());
    let batch: serde_json::Value = serde_json::from_str(&answer_body).expect("a batch");
    let messages = batch["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .filter(|frame| frame["type"] == "message")
        .count();
    assert_eq!(messages, 40);
    let cursor = batch["cursor"].as_i64().expect("a cursor");
    // The connection carries the next poll.
    raw.send(poll_request(&ana.token, &format!("cursor={cursor}&timeout=0"), "").as_bytes())
        .await;
    let (head, _) = answer(&mut raw).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    server.stop().await;
}
