//! Bad input (spec point 9): each kind gets its documented answer — an `error` frame on a
//! connection that stays open, a close code, or an HTTP status with an error body — and the server
//! keeps serving everyone else, which every test proves by having two bystanders chat afterwards.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use eventsource_client as es;
use futures_util::StreamExt;
use tidings_proto::v1::{
    ClientFrame, ErrorBody, ErrorCode, HistoryPage, Lock, LockReason, Me, Message, SESSION_COOKIE,
    SUBPROTOCOL, ServerFrame, close,
};
use tidings_tests::{Chat, Client, TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// The default largest message body, as the spec states it.
const DEFAULT_MAX_BODY: usize = 64 * 1024;
/// A room id no test server has.
const NO_SUCH_ROOM: i64 = 987_654_321;

/// Two users who chat in a room of their own: whatever the bad input, they must still be served.
struct Bystanders {
    room: i64,
    bo: Client,
    bo_chat: Chat,
    cy_chat: Chat,
    said: u32,
}

impl Bystanders {
    async fn arrive(server: &TestServer) -> Bystanders {
        let bo = server.user("bo").await;
        let cy = server.user("cy").await;
        let room = bo.create_room("lobby").await.room.id;
        cy.join(room).await;
        let bo_chat = bo.chat().await;
        let cy_chat = cy.chat().await;
        Bystanders {
            room,
            bo,
            bo_chat,
            cy_chat,
            said: 0,
        }
    }

    /// Bo says something new and Cy hears it. Returns the other messages Cy heard before it, in
    /// order, so a test can check what else reached the room.
    async fn still_chat(&mut self) -> Vec<Message> {
        self.said += 1;
        let client_id = format!("bystander-{}", self.said);
        let body = format!("still here ({})", self.said);
        let id = send_ok(&mut self.bo_chat, self.room, &client_id, &body).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            let frame = tokio::time::timeout_at(deadline, self.cy_chat.next())
                .await
                .unwrap_or_else(|_| panic!("cy did not hear message {id}; heard {before:?}"));
            match frame {
                ServerFrame::Message(m) if m.id == id => {
                    assert_eq!(m.body, body);
                    assert_eq!(m.author.id, self.bo.user.id);
                    assert_eq!(m.client_id.as_deref(), Some(client_id.as_str()));
                    return before;
                }
                ServerFrame::Message(m) => before.push(m),
                _ => {}
            }
        }
    }

    /// Closes the bystanders' connections so the server stops without waiting on them.
    fn leave(self) {
        drop(self.bo_chat);
        drop(self.cy_chat);
    }
}

/// Whether `frame` is the ack or the error that answers the send with `client_id`.
fn answers(frame: &ServerFrame, client_id: &str) -> bool {
    match frame {
        ServerFrame::Ack { client_id: c, .. } => c == client_id,
        ServerFrame::Error(e) => e.client_id.as_deref() == Some(client_id),
        _ => false,
    }
}

/// Sends a message that must be stored; returns its id.
async fn send_ok(chat: &mut Chat, room: i64, client_id: &str, body: &str) -> i64 {
    chat.send(&ClientFrame::Send {
        room,
        client_id: client_id.to_owned(),
        body: body.to_owned(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await;
    match chat
        .expect(&format!("the answer to {client_id}"), |f| {
            answers(f, client_id)
        })
        .await
    {
        ServerFrame::Ack { id, room: r, .. } => {
            assert_eq!(r, room, "ack of {client_id}");
            id
        }
        other => panic!("send {client_id} was refused: {other:?}"),
    }
}

/// The next frame that answers something the client asked, skipping what other users cause
/// (presence, messages, typing, read markers).
async fn next_answer(chat: &mut Chat) -> ServerFrame {
    chat.expect("an answer", |f| {
        !matches!(
            f,
            ServerFrame::Presence { .. }
                | ServerFrame::Message(_)
                | ServerFrame::Typing { .. }
                | ServerFrame::Read { .. }
        )
    })
    .await
}

/// The next answer, which must be an `error` frame.
async fn next_error(chat: &mut Chat) -> ErrorBody {
    match next_answer(chat).await {
        ServerFrame::Error(body) => {
            assert!(!body.message.is_empty(), "an error says why: {body:?}");
            body
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
}

async fn send_text(chat: &mut Chat, text: &str) {
    chat.send_raw(WsMessage::text(text)).await;
}

/// Sends `payload` as one text message cut into `parts` frames, each smaller than the whole.
async fn send_fragments(chat: &mut Chat, payload: &[u8], parts: usize) {
    let size = payload.len().div_ceil(parts);
    let chunks: Vec<&[u8]> = payload.chunks(size).collect();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        chat.send_raw(WsMessage::Frame(Frame::message(
            chunk.to_vec(),
            opcode,
            i == last,
        )))
        .await;
    }
}

/// The client ids of the messages `author` has stored in `room`, oldest first.
async fn stored_by(reader: &Client, room: i64, author: &Client) -> Vec<String> {
    let page: HistoryPage = reader
        .get(&format!("/api/rooms/{room}/messages?limit=200"))
        .await;
    page.messages
        .into_iter()
        .filter(|m| m.author.id == author.user.id)
        .map(|m| m.client_id.unwrap_or_default())
        .collect()
}

/// An HTTP answer that must be an error: its status and body.
async fn refusal(response: reqwest::Response) -> (u16, ErrorBody) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: not an error body ({e}): {text}"));
    (status, body)
}

/// What the server answered to a WebSocket upgrade.
struct Upgrade {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Upgrade {
    fn error(&self) -> ErrorBody {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: not an error body ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// Asks to upgrade to the chat channel with `headers`, at the byte level so that a refusal's
/// status and whole body can be read.
async fn upgrade(addr: SocketAddr, headers: &[(&str, &str)]) -> Upgrade {
    let mut request = format!(
        "GET /api/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tokio::time::timeout(WAIT, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the upgrade request");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no status in {head}"));
                let mut answer = Upgrade {
                    status,
                    head,
                    body: Vec::new(),
                };
                if status == 101 {
                    return answer;
                }
                let length: usize = answer
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no content-length in {}", answer.head));
                let start = end + 4;
                if buf.len() >= start + length {
                    answer.body = buf[start..start + length].to_vec();
                    return answer;
                }
            }
            let n = stream.read(&mut chunk).await.expect("read the answer");
            assert!(
                n > 0,
                "connection closed mid-answer: {}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("an answer to the upgrade in time")
}

/// The status and error body the event feed was refused with.
async fn feed_refusal(client: &Client) -> (u16, ErrorBody) {
    match client.feed(None).error().await {
        es::Error::UnexpectedResponse(response, body) => {
            let mut stream = body.into_stream();
            let mut bytes = Vec::new();
            while let Some(chunk) = tokio::time::timeout(WAIT, stream.next())
                .await
                .expect("the refusal's body in time")
            {
                bytes.extend_from_slice(&chunk.expect("body chunk"));
            }
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "status {}: not an error body ({e}): {}",
                    response.status(),
                    String::from_utf8_lossy(&bytes)
                )
            });
            (response.status(), body)
        }
        other => panic!("expected the feed to be refused, got {other}"),
    }
}

/// The same user with another token.
fn with_token(client: &Client, token: &str) -> Client {
    Client {
        token: token.to_owned(),
        ..client.clone()
    }
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_an_error_and_the_connection_stays_open() {
    let server = TestServer::start().await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let mut chat = ana.chat().await;
    let room = by.room;

    // (text sent, code, `frame`, `client_id`)
    let cases: Vec<(String, ErrorCode, Option<&str>, Option<&str>)> = vec![
        ("not json".into(), ErrorCode::BadFrame, None, None),
        (r#"{"type":"send","#.into(), ErrorCode::BadFrame, None, None),
        ("[1,2]".into(), ErrorCode::BadFrame, None, None),
        (r#"{"room":1}"#.into(), ErrorCode::BadFrame, None, None),
        (
            format!(r#"{{"type":"send","room":{room},"client_id":"c-1"}}"#),
            ErrorCode::BadFrame,
            Some("send"),
            Some("c-1"),
        ),
        (
            r#"{"type":"send","room":"lobby","client_id":"c-2","body":"hi"}"#.into(),
            ErrorCode::BadFrame,
            Some("send"),
            Some("c-2"),
        ),
        (
            r#"{"type":"sync","since":"yesterday"}"#.into(),
            ErrorCode::BadFrame,
            Some("sync"),
            None,
        ),
        (
            r#"{"type":"dance"}"#.into(),
            ErrorCode::UnknownType,
            Some("dance"),
            None,
        ),
        (
            format!(r#"{{"type":"dance","client_id":"c-3","room":{room}}}"#),
            ErrorCode::UnknownType,
            Some("dance"),
            Some("c-3"),
        ),
    ];
    for (text, code, frame, client_id) in &cases {
        send_text(&mut chat, text).await;
        let error = next_error(&mut chat).await;
        assert_eq!(error.code, *code, "{text}: {error:?}");
        assert_eq!(error.frame.as_deref(), *frame, "{text}: {error:?}");
        assert_eq!(error.client_id.as_deref(), *client_id, "{text}: {error:?}");
        assert_eq!(error.retry_after_ms, None, "{text}: {error:?}");
    }

    // The same connection still works, and none of the bad frames stored anything.
    send_ok(&mut chat, room, "c-ok", "after all that").await;
    let heard = by.still_chat().await;
    let from_ana: Vec<_> = heard
        .iter()
        .filter(|m| m.author.id == ana.user.id)
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(from_ana, ["after all that"]);
    assert_eq!(stored_by(&ana, room, &ana).await, ["c-ok"]);

    drop(chat);
    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn a_binary_frame_closes_with_1003() {
    let server = TestServer::start().await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let mut chat = ana.chat().await;

    chat.send_raw(WsMessage::binary(
        serde_json::to_vec(&ClientFrame::Send {
            room: by.room,
            client_id: "bin-1".into(),
            body: "in a binary frame".into(),
            reply_to: None,
            attachments: Vec::new(),
        })
        .unwrap(),
    ))
    .await;
    let closed = chat.closed().await;
    assert_eq!(closed.code, close::UNSUPPORTED_DATA, "{closed:?}");
    drop(chat);

    by.still_chat().await;
    // Ana is not locked out: she reconnects and chats; the binary frame stored nothing.
    let mut chat = ana.chat().await;
    send_ok(&mut chat, by.room, "text-1", "in a text frame").await;
    assert_eq!(stored_by(&ana, by.room, &ana).await, ["text-1"]);

    drop(chat);
    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let server = TestServer::start().await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let mut chat = ana.chat().await;

    // A text frame whose payload is not UTF-8, built by hand: the client library would not make
    // one from a string.
    let mut payload = format!(
        r#"{{"type":"send","room":{},"client_id":"utf-1","body":""#,
        by.room
    )
    .into_bytes();
    payload.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    payload.extend_from_slice(br#""}"#);
    chat.send_raw(WsMessage::Frame(Frame::message(
        payload,
        OpCode::Data(Data::Text),
        true,
    )))
    .await;
    let closed = chat.closed().await;
    assert_eq!(closed.code, close::INVALID_PAYLOAD, "{closed:?}");
    drop(chat);

    by.still_chat().await;
    let mut chat = ana.chat().await;
    send_ok(&mut chat, by.room, "utf-2", "valid UTF-8: é").await;
    assert_eq!(stored_by(&ana, by.room, &ana).await, ["utf-2"]);

    drop(chat);
    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn a_frame_over_the_frame_limit_closes_with_1009() {
    // A small frame limit keeps the oversized frame within the socket buffers, so the client has
    // written all of it before the server closes.
    const FRAME_LIMIT: usize = 8 * 1024;
    let server = TestServer::start_with(|config| {
        config.limits.max_frame_bytes = FRAME_LIMIT;
        config.limits.max_body_bytes = 2 * 1024;
    })
    .await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let mut chat = ana.chat().await;

    let text = serde_json::to_string(&ClientFrame::Send {
        room: by.room,
        client_id: "huge-1".into(),
        body: "a".repeat(FRAME_LIMIT),
        reply_to: None,
        attachments: Vec::new(),
    })
    .unwrap();
    assert!(text.len() > FRAME_LIMIT);
    send_text(&mut chat, &text).await;
    let closed = chat.closed().await;
    assert_eq!(closed.code, close::TOO_BIG, "{closed:?}");
    drop(chat);

    by.still_chat().await;

    // Fragments: a message of small frames is fine while the whole stays within the limit, and
    // closes the connection when the whole goes over it.
    let mut chat = ana.chat().await;
    let small = serde_json::to_vec(&ClientFrame::Send {
        room: by.room,
        client_id: "small-1".into(),
        body: "in three fragments".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .unwrap();
    send_fragments(&mut chat, &small, 3).await;
    let answer = chat
        .expect("the answer to small-1", |f| answers(f, "small-1"))
        .await;
    assert!(matches!(answer, ServerFrame::Ack { .. }), "{answer:?}");
    let huge = text.into_bytes();
    send_fragments(&mut chat, &huge, 4).await;
    let closed = chat.closed().await;
    assert_eq!(closed.code, close::TOO_BIG, "{closed:?}");
    drop(chat);

    by.still_chat().await;
    let mut chat = ana.chat().await;
    send_ok(&mut chat, by.room, "small-2", "small enough").await;
    assert_eq!(stored_by(&ana, by.room, &ana).await, ["small-1", "small-2"]);

    drop(chat);
    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn a_body_over_the_body_limit_is_too_large_and_the_connection_stays_open() {
    let server = TestServer::start().await;
    assert_eq!(server.config.limits.max_body_bytes, DEFAULT_MAX_BODY);
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let mut chat = ana.chat().await;
    assert_eq!(chat.hello().max_body_bytes, DEFAULT_MAX_BODY);
    let room = by.room;

    // One byte over, and fewer characters than the limit but more bytes: the limit is in bytes.
    for (client_id, body) in [
        ("big-1", "a".repeat(DEFAULT_MAX_BODY + 1)),
        ("big-2", "é".repeat(DEFAULT_MAX_BODY / 2 + 1)),
    ] {
        chat.send(&ClientFrame::Send {
            room,
            client_id: client_id.into(),
            body,
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
        let error = next_error(&mut chat).await;
        assert_eq!(error.code, ErrorCode::TooLarge, "{error:?}");
        assert_eq!(error.frame.as_deref(), Some("send"));
        assert_eq!(error.client_id.as_deref(), Some(client_id));
    }
    // Exactly at the limit is fine, on the same connection.
    send_ok(&mut chat, room, "edge-1", &"a".repeat(DEFAULT_MAX_BODY)).await;

    // Over HTTP: 413 with the same code.
    let response = ana
        .request(
            reqwest::Method::POST,
            &format!("/api/rooms/{room}/messages"),
        )
        .json(&tidings_proto::v1::SendMessage {
            client_id: Some("big-http".into()),
            body: "a".repeat(DEFAULT_MAX_BODY + 1),
            reply_to: None,
            attachments: Vec::new(),
        })
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(response).await;
    assert_eq!(status, 413);
    assert_eq!(error.code, ErrorCode::TooLarge);

    by.still_chat().await;
    assert_eq!(stored_by(&ana, room, &ana).await, ["edge-1"]);

    drop(chat);
    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn an_upgrade_without_the_subprotocol_is_refused_with_400() {
    let server = TestServer::start().await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    let bearer = format!("Bearer {}", ana.token);

    for offered in [None, Some("chat.v2"), Some("tidings.v2, tidings")] {
        let mut headers = vec![("Authorization", bearer.as_str())];
        if let Some(offered) = offered {
            headers.push(("Sec-WebSocket-Protocol", offered));
        }
        let answer = upgrade(server.addr, &headers).await;
        assert_eq!(answer.status, 400, "offered {offered:?}: {}", answer.head);
        let error = answer.error();
        assert_eq!(error.code, ErrorCode::SubprotocolRequired, "{error:?}");
        assert!(error.message.contains(SUBPROTOCOL), "{error:?}");
    }

    // Offering it among others is enough, and the server selects it.
    let offered = format!("chat.v2, {SUBPROTOCOL}");
    let answer = upgrade(
        server.addr,
        &[
            ("Authorization", bearer.as_str()),
            ("Sec-WebSocket-Protocol", offered.as_str()),
        ],
    )
    .await;
    assert_eq!(answer.status, 101, "{}", answer.head);
    assert_eq!(answer.header("sec-websocket-protocol"), Some(SUBPROTOCOL));

    by.still_chat().await;
    by.leave();
    server.stop().await;
}

/// Checks that `client`'s token is refused with 401 `unauthorized` by the HTTP API, the chat
/// upgrade and the event feed.
async fn assert_refused_everywhere(server: &TestServer, client: &Client, room: i64) {
    let response = client
        .request(reqwest::Method::GET, "/api/me")
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(response).await;
    assert_eq!(
        (status, error.code),
        (401, ErrorCode::Unauthorized),
        "/api/me"
    );

    let response = client
        .request(
            reqwest::Method::POST,
            &format!("/api/rooms/{room}/messages"),
        )
        .json(&tidings_proto::v1::SendMessage {
            client_id: Some("refused".into()),
            body: "let me in".into(),
            reply_to: None,
            attachments: Vec::new(),
        })
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(response).await;
    assert_eq!((status, error.code), (401, ErrorCode::Unauthorized), "post");

    let bearer = format!("Bearer {}", client.token);
    let answer = upgrade(
        server.addr,
        &[
            ("Authorization", bearer.as_str()),
            ("Sec-WebSocket-Protocol", SUBPROTOCOL),
        ],
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.head);
    assert_eq!(answer.error().code, ErrorCode::Unauthorized);

    let (status, error) = feed_refusal(client).await;
    assert_eq!((status, error.code), (401, ErrorCode::Unauthorized), "feed");
}

#[tokio::test]
async fn a_bad_token_is_refused_with_401_everywhere() {
    let server = TestServer::start().await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;

    // Made up, shaped like a real token, or a real one after logging out.
    assert_refused_everywhere(&server, &with_token(&ana, "not-a-token"), by.room).await;
    let forged = with_token(&ana, &"A".repeat(ana.token.len()));
    assert_refused_everywhere(&server, &forged, by.room).await;
    let laptop = server.login("ana", tidings_tests::PASSWORD).await;
    let me: Me = laptop.get("/api/me").await;
    assert_eq!(me.user.id, ana.user.id);
    let response = laptop
        .request(reqwest::Method::POST, "/api/logout")
        .send()
        .await
        .expect("logout");
    assert!(response.status().is_success(), "{}", response.status());
    assert_refused_everywhere(&server, &laptop, by.room).await;

    // No token at all, or not a bearer token.
    let anonymous = ana
        .http
        .get(format!("{}/api/me", ana.base))
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(anonymous).await;
    assert_eq!((status, error.code), (401, ErrorCode::Unauthorized));
    let basic = ana
        .http
        .get(format!("{}/api/me", ana.base))
        .header("Authorization", format!("Basic {}", ana.token))
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(basic).await;
    assert_eq!((status, error.code), (401, ErrorCode::Unauthorized));
    let answer = upgrade(server.addr, &[("Sec-WebSocket-Protocol", SUBPROTOCOL)]).await;
    assert_eq!(answer.status, 401, "{}", answer.head);
    assert_eq!(answer.error().code, ErrorCode::Unauthorized);

    // Ana's own session was never affected, and nothing refused was stored.
    let mut chat = ana.chat().await;
    send_ok(&mut chat, by.room, "real-1", "my token is fine").await;
    by.still_chat().await;
    assert_eq!(stored_by(&ana, by.room, &ana).await, ["real-1"]);

    drop(chat);
    by.leave();
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_refused_with_401_everywhere() {
    let server = TestServer::start_paused(|config| {
        config.session.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let ana = server.user("ana").await;
    let room = ana.create_room("anas").await.room.id;
    let me: Me = ana.get("/api/me").await;
    assert_eq!(me.user.id, ana.user.id);

    // Watching the feed is not activity, so the session idles out while Ana watches; the `lock`
    // event says when.
    let mut feed = ana.feed(None);
    let lock: Lock = feed.expect("lock").await.json();
    assert_eq!(lock.reason, LockReason::Expired);
    assert!(feed.next().await.is_none(), "the feed ends after lock");

    assert_refused_everywhere(&server, &ana, room).await;

    // Everyone else is still served: people who log in now chat as usual.
    let mut by = Bystanders::arrive(&server).await;
    by.still_chat().await;
    let page: HistoryPage = by.bo.get(&format!("/api/rooms/{}/messages", by.room)).await;
    assert_eq!(page.messages.len(), 1);
    let response = by
        .bo
        .request(reqwest::Method::POST, &format!("/api/rooms/{room}/join"))
        .send()
        .await
        .expect("join");
    assert!(response.status().is_success(), "{}", response.status());
    let page: HistoryPage = by.bo.get(&format!("/api/rooms/{room}/messages")).await;
    assert!(page.messages.is_empty(), "{page:?}");

    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn the_session_cookie_from_a_foreign_origin_is_refused_with_403() {
    const ALLOWED: &str = "http://app.example";
    const FOREIGN: &str = "http://evil.example";
    let server = TestServer::start_with(|config| {
        config.allowed_origins = vec![ALLOWED.to_owned()];
    })
    .await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let cookie = format!("{SESSION_COOKIE}={}", ana.token);
    let own = format!("http://{}", server.addr);
    let get = |path: &str, origin: &str| {
        ana.http
            .get(format!("{}{path}", ana.base))
            .header("Cookie", &cookie)
            .header("Origin", origin)
            .send()
    };

    // The HTTP API, a send (the cross-site request worth forging), the feed, the chat upgrade.
    let (status, error) = refusal(get("/api/me", FOREIGN).await.expect("request")).await;
    assert_eq!((status, error.code), (403, ErrorCode::OriginNotAllowed));
    let send = ana
        .http
        .post(format!("{}/api/rooms/{}/messages", ana.base, by.room))
        .header("Cookie", &cookie)
        .header("Origin", FOREIGN)
        .json(&tidings_proto::v1::SendMessage {
            client_id: Some("forged-1".into()),
            body: "sent by another site".into(),
            reply_to: None,
            attachments: Vec::new(),
        })
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(send).await;
    assert_eq!((status, error.code), (403, ErrorCode::OriginNotAllowed));
    let (status, error) = refusal(get("/api/events", FOREIGN).await.expect("request")).await;
    assert_eq!((status, error.code), (403, ErrorCode::OriginNotAllowed));
    let answer = upgrade(
        server.addr,
        &[
            ("Cookie", cookie.as_str()),
            ("Origin", FOREIGN),
            ("Sec-WebSocket-Protocol", SUBPROTOCOL),
        ],
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.head);
    assert_eq!(answer.error().code, ErrorCode::OriginNotAllowed);

    // The same cookie from the server's own origin or an allowed one is fine: it is the origin
    // that was refused, not the cookie.
    for origin in [own.as_str(), ALLOWED] {
        let me = get("/api/me", origin).await.expect("request");
        assert_eq!(me.status(), 200, "{origin}");
        let feed = get("/api/events", origin).await.expect("request");
        assert_eq!(feed.status(), 200, "{origin}");
        drop(feed);
        let answer = upgrade(
            server.addr,
            &[
                ("Cookie", cookie.as_str()),
                ("Origin", origin),
                ("Sec-WebSocket-Protocol", SUBPROTOCOL),
            ],
        )
        .await;
        assert_eq!(answer.status, 101, "{origin}: {}", answer.head);
    }

    by.still_chat().await;
    assert!(stored_by(&ana, by.room, &ana).await.is_empty());

    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_room_is_unknown_room() {
    let server = TestServer::start().await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let mut chat = ana.chat().await;

    chat.send(&ClientFrame::Send {
        room: NO_SUCH_ROOM,
        client_id: "lost-1".into(),
        body: "anyone?".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await;
    let error = next_error(&mut chat).await;
    assert_eq!(error.code, ErrorCode::UnknownRoom, "{error:?}");
    assert_eq!(error.frame.as_deref(), Some("send"));
    assert_eq!(error.client_id.as_deref(), Some("lost-1"));

    for (frame, kind) in [
        (
            ClientFrame::History {
                room: NO_SUCH_ROOM,
                before: None,
                limit: None,
            },
            "history",
        ),
        (ClientFrame::Typing { room: NO_SUCH_ROOM }, "typing"),
        (
            ClientFrame::Read {
                room: NO_SUCH_ROOM,
                message_id: 1,
            },
            "read",
        ),
    ] {
        chat.send(&frame).await;
        let error = next_error(&mut chat).await;
        assert_eq!(error.code, ErrorCode::UnknownRoom, "{kind}: {error:?}");
        assert_eq!(error.frame.as_deref(), Some(kind));
        assert_eq!(error.client_id, None);
    }

    let response = ana
        .request(
            reqwest::Method::POST,
            &format!("/api/rooms/{NO_SUCH_ROOM}/messages"),
        )
        .json(&tidings_proto::v1::SendMessage {
            client_id: Some("lost-2".into()),
            body: "anyone?".into(),
            reply_to: None,
            attachments: Vec::new(),
        })
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(response).await;
    assert_eq!((status, error.code), (404, ErrorCode::UnknownRoom));
    let response = ana
        .request(
            reqwest::Method::POST,
            &format!("/api/rooms/{NO_SUCH_ROOM}/join"),
        )
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(response).await;
    assert_eq!((status, error.code), (404, ErrorCode::UnknownRoom));

    send_ok(&mut chat, by.room, "found-1", "back in the lobby").await;
    by.still_chat().await;

    drop(chat);
    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn a_room_the_user_is_not_in_is_not_member() {
    let server = TestServer::start().await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let private = by.bo.create_room("private").await.room.id;
    let dm = by.bo.dm("cy").await.room.id;
    let mut chat = ana.chat().await;

    for (room, client_id) in [(private, "nm-1"), (dm, "nm-2")] {
        chat.send(&ClientFrame::Send {
            room,
            client_id: client_id.into(),
            body: "let me in".into(),
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
        let error = next_error(&mut chat).await;
        assert_eq!(error.code, ErrorCode::NotMember, "{error:?}");
        assert_eq!(error.frame.as_deref(), Some("send"));
        assert_eq!(error.client_id.as_deref(), Some(client_id));
    }
    for (frame, kind) in [
        (
            ClientFrame::History {
                room: dm,
                before: None,
                limit: None,
            },
            "history",
        ),
        (ClientFrame::Typing { room: dm }, "typing"),
        (
            ClientFrame::Read {
                room: dm,
                message_id: 1,
            },
            "read",
        ),
    ] {
        chat.send(&frame).await;
        let error = next_error(&mut chat).await;
        assert_eq!(error.code, ErrorCode::NotMember, "{kind}: {error:?}");
        assert_eq!(error.frame.as_deref(), Some(kind));
        assert_eq!(error.client_id, None);
    }

    let response = ana
        .request(reqwest::Method::POST, &format!("/api/rooms/{dm}/messages"))
        .json(&tidings_proto::v1::SendMessage {
            client_id: Some("nm-3".into()),
            body: "let me in".into(),
            reply_to: None,
            attachments: Vec::new(),
        })
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(response).await;
    assert_eq!((status, error.code), (403, ErrorCode::NotMember));
    let response = ana
        .request(reqwest::Method::GET, &format!("/api/rooms/{dm}/messages"))
        .send()
        .await
        .expect("request");
    let (status, error) = refusal(response).await;
    assert_eq!((status, error.code), (403, ErrorCode::NotMember));

    // Nothing reached the rooms Ana is not in, and the members there still talk.
    let page: HistoryPage = by.bo.get(&format!("/api/rooms/{dm}/messages")).await;
    assert!(page.messages.is_empty(), "{page:?}");
    let page: HistoryPage = by.bo.get(&format!("/api/rooms/{private}/messages")).await;
    assert!(page.messages.is_empty(), "{page:?}");
    let id = send_ok(&mut by.bo_chat, dm, "dm-1", "just us").await;
    let heard = by
        .cy_chat
        .expect(
            "the dm",
            |f| matches!(f, ServerFrame::Message(m) if m.id == id),
        )
        .await;
    let ServerFrame::Message(m) = heard else {
        unreachable!()
    };
    assert_eq!(m.room, dm);
    by.still_chat().await;
    send_ok(&mut chat, by.room, "member-1", "where I belong").await;

    drop(chat);
    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn sends_over_the_rate_limit_are_refused_and_not_stored() {
    const BURST: u32 = 3;
    const SENT: usize = 10;
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_second = 1;
        config.limits.message_burst = BURST;
    })
    .await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let mut chat = ana.chat().await;

    // Far faster than one a second: the burst goes through, the rest is refused.
    let ids: Vec<String> = (0..SENT).map(|i| format!("fast-{i}")).collect();
    for client_id in &ids {
        chat.send(&ClientFrame::Send {
            room: by.room,
            client_id: client_id.clone(),
            body: format!("message {client_id}"),
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
    }
    let mut acked = BTreeSet::new();
    let mut refused = BTreeSet::new();
    while acked.len() + refused.len() < SENT {
        match next_answer(&mut chat).await {
            ServerFrame::Ack { client_id, .. } => {
                assert!(acked.insert(client_id.clone()), "acked twice: {client_id}");
            }
            ServerFrame::Error(error) => {
                assert_eq!(error.code, ErrorCode::RateLimited, "{error:?}");
                assert_eq!(error.frame.as_deref(), Some("send"));
                let retry = error.retry_after_ms.expect("retry_after_ms");
                assert!((1..=1000).contains(&retry), "{error:?}");
                let client_id = error.client_id.expect("client_id");
                assert!(
                    refused.insert(client_id.clone()),
                    "refused twice: {client_id}"
                );
            }
            other => panic!("expected an ack or an error, got {other:?}"),
        }
    }
    assert!(acked.len() >= BURST as usize, "acked {acked:?}");
    assert!(!refused.is_empty(), "acked {acked:?}");
    assert!(acked.is_disjoint(&refused));

    // The limit is per user, whatever the transport: HTTP is refused too (sooner or later, as
    // the bucket refills one a second).
    let mut refused_over_http = None;
    for i in 0..10 {
        let client_id = format!("http-{i}");
        let response = ana
            .request(
                reqwest::Method::POST,
                &format!("/api/rooms/{}/messages", by.room),
            )
            .json(&tidings_proto::v1::SendMessage {
                client_id: Some(client_id.clone()),
                body: "over http".into(),
                reply_to: None,
                attachments: Vec::new(),
            })
            .send()
            .await
            .expect("request");
        if response.status() == 429 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            assert!(matches!(retry_after, Some(1..)), "{retry_after:?}");
            let (_, error) = refusal(response).await;
            assert_eq!(error.code, ErrorCode::RateLimited);
            assert!(matches!(error.retry_after_ms, Some(1..=1000)), "{error:?}");
            refused_over_http = Some(client_id);
            break;
        }
        assert_eq!(response.status(), 201);
        acked.insert(client_id);
    }
    let refused_over_http = refused_over_http.expect("HTTP sends are rate-limited too");

    // Resending a message that is already stored, while still over the rate, is acknowledged
    // with the stored message: an outbox draining after a reconnect is not refused.
    let stored_id = acked.iter().next().expect("something was acked").clone();
    let response = ana
        .request(
            reqwest::Method::POST,
            &format!("/api/rooms/{}/messages", by.room),
        )
        .json(&tidings_proto::v1::SendMessage {
            client_id: Some(stored_id.clone()),
            body: "a resend".into(),
            reply_to: None,
            attachments: Vec::new(),
        })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "a duplicate is acknowledged");
    let resent: tidings_proto::v1::Message = response.json().await.expect("message");
    assert_eq!(resent.client_id.as_deref(), Some(stored_id.as_str()));
    assert_ne!(
        resent.body, "a resend",
        "the stored message, not the resend"
    );

    // Bo has a bucket of his own.
    by.still_chat().await;
    let stored: BTreeSet<String> = stored_by(&ana, by.room, &ana).await.into_iter().collect();
    assert_eq!(stored, acked);
    assert!(stored.is_disjoint(&refused));
    assert!(!stored.contains(&refused_over_http));

    drop(chat);
    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn malformed_json_over_http_is_bad_frame() {
    let server = TestServer::start().await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let messages = format!("/api/rooms/{}/messages", by.room);

    for (path, body) in [
        (messages.as_str(), &br#"{"body": "#[..]),
        (messages.as_str(), b"not json"),
        (messages.as_str(), br#"{"client_id": 5, "body": "x"}"#),
        (messages.as_str(), br#"{"client_id": "c"}"#),
        // Invalid UTF-8 inside a string.
        (messages.as_str(), b"{\"body\": \"\xff\xfe\"}"),
        ("/api/rooms", br#"{"name": ["ops"]}"#),
        ("/api/login", br#"{"name": "ana""#),
    ] {
        let response = ana
            .request(reqwest::Method::POST, path)
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("request");
        let (status, error) = refusal(response).await;
        assert_eq!(
            (status, error.code),
            (400, ErrorCode::BadFrame),
            "{path} {}: {error:?}",
            String::from_utf8_lossy(body)
        );
    }

    by.still_chat().await;
    assert!(stored_by(&ana, by.room, &ana).await.is_empty());
    let message = tidings_tests::post_message(&ana, by.room, "good-1", "well-formed").await;
    assert_eq!(message.body, "well-formed");

    by.leave();
    server.stop().await;
}

#[tokio::test]
async fn posting_the_same_client_id_twice_stores_one_message() {
    let server = TestServer::start().await;
    let mut by = Bystanders::arrive(&server).await;
    let ana = server.user("ana").await;
    ana.join(by.room).await;
    let post = || {
        ana.request(
            reqwest::Method::POST,
            &format!("/api/rooms/{}/messages", by.room),
        )
        .json(&tidings_proto::v1::SendMessage {
            client_id: Some("dup-1".into()),
            body: "only once".into(),
            reply_to: None,
            attachments: Vec::new(),
        })
        .send()
    };

    let first = post().await.expect("request");
    assert_eq!(first.status(), 201);
    let first: Message = first.json().await.expect("message");
    let second = post().await.expect("request");
    assert_eq!(second.status(), 200, "a retry is not a new message");
    let second: Message = second.json().await.expect("message");
    assert_eq!(second, first);

    // Retried over the chat channel, it is acked as the stored message.
    let mut chat = ana.chat().await;
    let id = send_ok(&mut chat, by.room, "dup-1", "only once").await;
    assert_eq!(id, first.id);

    let heard = by.still_chat().await;
    let copies = heard
        .iter()
        .filter(|m| m.client_id.as_deref() == Some("dup-1"))
        .count();
    assert_eq!(copies, 1, "cy heard {heard:?}");
    assert_eq!(stored_by(&ana, by.room, &ana).await, ["dup-1"]);

    drop(chat);
    by.leave();
    server.stop().await;
}
