//! The chat channel's HTTP transports (`/api/poll`, `/api/stream`, `/api/stream/iframe`,
//! `POST /api/frames`), read by raw HTTP clients that check every byte the server sends: each
//! message exactly once and in id order however often the connection is cut, the session's lock
//! at once, the iframe's escaping, presence between polls.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use tidings_proto::v1::{
    Batch, ClientFrame, ErrorBody, ErrorCode, LockReason, PresenceStatus, ServerFrame,
    TransportKind, Transports,
};
use tidings_tests::{Client, Dice, TestServer, WAIT, busy_room, post_message, send_spread};
use tokio::time::{Instant, timeout};

/// How a raw reader takes the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    LongPoll,
    ShortPoll,
    Lines,
    Sse,
    Iframe,
}

/// Batches as one way frames them, taken out of `buffer` as they complete.
fn batches(way: Way, buffer: &mut Vec<u8>) -> Vec<Batch> {
    let mut out = Vec::new();
    loop {
        let (end, json) = match way {
            Way::Lines | Way::Sse => {
                let Some(end) = buffer.iter().position(|b| *b == b'\n') else {
                    return out;
                };
                let line = &buffer[..end];
                let json = match way {
                    Way::Sse => line.strip_prefix(b"data: ").map(<[u8]>::to_vec),
                    _ => (!line.is_empty()).then(|| line.to_vec()),
                };
                (end + 1, json)
            }
            Way::Iframe => {
                let text = String::from_utf8_lossy(buffer).into_owned();
                let Some(end) = text.find("</script>\n") else {
                    return out;
                };
                let chunk = &text[..end];
                let json = chunk
                    .find("<script>parent.tidings(")
                    .map(|start| chunk.as_bytes()[start + 23..chunk.len() - 1].to_vec());
                (end + "</script>\n".len(), json)
            }
            Way::LongPoll | Way::ShortPoll => unreachable!("a poll's answer is one batch"),
        };
        if let Some(json) = json {
            out.push(serde_json::from_slice(&json).expect("a batch"));
        }
        buffer.drain(..end);
    }
}

/// What a reader saw.
#[derive(Debug, Default)]
struct Seen {
    /// Message ids, in the order they arrived.
    ids: Vec<i64>,
    cuts: usize,
    locked: Option<LockReason>,
}

impl Seen {
    fn take(&mut self, batch: &Batch, cursor: &mut i64) {
        for frame in &batch.frames {
            match frame {
                ServerFrame::Message(message) => self.ids.push(message.id),
                ServerFrame::Lock(lock) => self.locked = Some(lock.reason),
                _ => {}
            }
        }
        assert!(batch.cursor >= *cursor, "the cursor went back");
        *cursor = batch.cursor;
    }
}

/// Reads `way` until `want` messages arrived and `cuts` cuts were made, dropping the request at
/// random points (a held poll mid-wait, a stream between any two chunks) and resuming from the
/// last cursor received.
async fn read_with_cuts(
    reader: &Client,
    way: Way,
    want: usize,
    cuts: usize,
    dice: &mut Dice,
) -> Seen {
    let mut seen = Seen::default();
    let mut cursor = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.ids.len() < want || seen.cuts < cuts {
        assert!(
            Instant::now() < deadline,
            "{way:?}: {} of {want} after 60 s",
            seen.ids.len()
        );
        // Once everything is in, the cuts left are made at once (an idle poll is held 25 s).
        let cut_now = seen.cuts < cuts && (seen.ids.len() >= want || dice.roll(3) == 0);
        match way {
            Way::LongPoll | Way::ShortPoll => {
                let wait = if way == Way::LongPoll { 25 } else { 0 };
                let poll = reader
                    .request(
                        reqwest::Method::GET,
                        &format!("/api/poll?cursor={cursor}&timeout={wait}"),
                    )
                    .timeout(Duration::from_secs(30))
                    .send();
                let answer = async { poll.await.expect("poll").bytes().await.expect("poll body") };
                let bytes = if cut_now {
                    match timeout(Duration::from_millis(dice.roll(20)), answer).await {
                        Ok(bytes) => bytes,
                        Err(_) => {
                            seen.cuts += 1;
                            continue;
                        }
                    }
                } else {
                    answer.await
                };
                let batch: Batch = serde_json::from_slice(&bytes).expect("a batch");
                seen.take(&batch, &mut cursor);
            }
            Way::Lines | Way::Sse | Way::Iframe => {
                let path = match way {
                    Way::Iframe => format!("/api/stream/iframe?cursor={cursor}"),
                    _ => format!("/api/stream?cursor={cursor}"),
                };
                let mut request = reader
                    .request(reqwest::Method::GET, &path)
                    .timeout(Duration::from_secs(60));
                if way == Way::Sse {
                    request = request.header("accept", "text/event-stream");
                }
                let response = request.send().await.expect("stream");
                assert_eq!(response.status(), StatusCode::OK);
                let mut body = response.bytes_stream();
                let mut buffer = Vec::new();
                // Cut after a few chunks, or read until enough arrived (then one last cut).
                let cut_after = if cut_now { 1 + dice.roll(4) } else { u64::MAX };
                let mut chunks = 0;
                loop {
                    if seen.ids.len() >= want && seen.cuts < cuts {
                        seen.cuts += 1;
                        break;
                    }
                    if seen.ids.len() >= want {
                        break;
                    }
                    let Ok(next) = timeout(WAIT, body.next()).await else {
                        panic!("{way:?}: the stream stalled");
                    };
                    // Ended by the server (its size cut, or the reader fell behind): reopen.
                    let Some(chunk) = next else {
                        break;
                    };
                    buffer.extend_from_slice(&chunk.expect("chunk"));
                    for batch in batches(way, &mut buffer) {
                        seen.take(&batch, &mut cursor);
                    }
                    chunks += 1;
                    if chunks >= cut_after {
                        seen.cuts += 1;
                        break;
                    }
                }
            }
        }
    }
    seen
}

async fn every_message_once_in_order_across_cuts(way: Way, seed: u64) {
    const MESSAGES: usize = 2_000;
    const CUTS: usize = 50;
    let server = TestServer::start_with(|c| {
        crate::unthrottled(c);
    })
    .await;
    let (room, senders) = busy_room(&server).await;
    let reader = server.user("reader").await;
    reader.join(room).await;
    let sending = send_spread(senders, room, MESSAGES);
    let mut dice = Dice(seed);
    let seen = read_with_cuts(&reader, way, MESSAGES, CUTS, &mut dice).await;
    let mut sent = Vec::new();
    for sender in sending {
        sent.extend(sender.await.expect("sender"));
    }
    sent.sort_unstable();
    assert_eq!(seen.cuts, CUTS, "{way:?}");
    assert!(
        seen.ids.windows(2).all(|w| w[0] < w[1]),
        "{way:?}: a message arrived twice or out of order"
    );
    assert_eq!(seen.ids, sent, "{way:?}: every message, exactly once");
}

#[tokio::test]
async fn long_polling_delivers_every_message_once_in_order_across_50_cuts() {
    every_message_once_in_order_across_cuts(Way::LongPoll, 0x9e37_79b9).await;
}

#[tokio::test]
async fn short_polling_delivers_every_message_once_in_order_across_50_cuts() {
    every_message_once_in_order_across_cuts(Way::ShortPoll, 0x85eb_ca6b).await;
}

#[tokio::test]
async fn json_lines_streaming_delivers_every_message_once_in_order_across_50_cuts() {
    every_message_once_in_order_across_cuts(Way::Lines, 0xc2b2_ae35).await;
}

#[tokio::test]
async fn sse_streaming_delivers_every_message_once_in_order_across_50_cuts() {
    every_message_once_in_order_across_cuts(Way::Sse, 0x27d4_eb2f).await;
}

#[tokio::test]
async fn iframe_streaming_delivers_every_message_once_in_order_across_50_cuts() {
    every_message_once_in_order_across_cuts(Way::Iframe, 0x1656_67b1).await;
}

/// Waits on `watcher`'s chat until `user` shows as online: their poll or stream is registered.
async fn until_online(watcher: &mut tidings_tests::Chat, user: i64) {
    watcher
        .expect("presence online", |f| {
            matches!(f, ServerFrame::Presence { user: u, status: PresenceStatus::Online } if u.id == user)
        })
        .await;
}

#[tokio::test]
async fn revocation_answers_a_held_long_poll_with_the_lock_within_a_second() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let room = owner.create_room("lobby").await.room.id;
    let poller = server.user("poller").await;
    poller.join(room).await;
    let other_device = server.login("poller", tidings_tests::PASSWORD).await;
    let mut watcher = owner.chat().await;
    let poll = {
        let poller = poller.clone();
        tokio::spawn(async move {
            let answer = poller
                .request(reqwest::Method::GET, "/api/poll?cursor=0&timeout=25")
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("poll");
            let batch: Batch = answer.json().await.expect("batch");
            (batch, Instant::now())
        })
    };
    until_online(&mut watcher, poller.user.id).await;
    let revoked_at = Instant::now();
    let status = other_device
        .request(
            reqwest::Method::DELETE,
            &format!("/api/sessions/{}", poller.session),
        )
        .send()
        .await
        .expect("revoke")
        .status();
    assert!(status.is_success(), "{status}");
    let (batch, answered_at) = timeout(WAIT, poll)
        .await
        .expect("answered")
        .expect("poll task");
    let took = answered_at - revoked_at;
    assert!(
        took < Duration::from_secs(1),
        "the held poll answered after {took:?}"
    );
    assert!(
        batch
            .frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Lock(l) if l.reason == LockReason::Revoked)),
        "{batch:?}"
    );
    // And the next poll is refused: the token is dead.
    let again = poller
        .request(reqwest::Method::GET, "/api/poll?timeout=0")
        .send()
        .await
        .expect("poll");
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revocation_ends_an_iframe_stream_with_the_lock_within_a_second() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let streamer = server.user("streamer").await;
    let other_device = server.login("streamer", tidings_tests::PASSWORD).await;
    let response = streamer
        .request(reqwest::Method::GET, "/api/stream/iframe?cursor=0")
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("iframe stream");
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    // The opening batch: the stream is registered.
    while batches(Way::Iframe, &mut buffer).is_empty() {
        let chunk = timeout(WAIT, body.next())
            .await
            .expect("opening")
            .expect("chunk");
        buffer.extend_from_slice(&chunk.expect("bytes"));
    }
    let revoked_at = Instant::now();
    let status = other_device
        .request(
            reqwest::Method::DELETE,
            &format!("/api/sessions/{}", streamer.session),
        )
        .send()
        .await
        .expect("revoke")
        .status();
    assert!(status.is_success(), "{status}");
    let mut lock = None;
    while lock.is_none() {
        let chunk = timeout(WAIT, body.next())
            .await
            .expect("the lock")
            .expect("chunk");
        buffer.extend_from_slice(&chunk.expect("bytes"));
        for batch in batches(Way::Iframe, &mut buffer) {
            lock = lock.or(batch.frames.into_iter().find_map(|f| match f {
                ServerFrame::Lock(l) => Some(l.reason),
                _ => None,
            }));
        }
    }
    let took = revoked_at.elapsed();
    assert!(took < Duration::from_secs(1), "locked after {took:?}");
    assert_eq!(lock, Some(LockReason::Revoked));
    // Nothing follows the lock: the response ends.
    assert!(timeout(WAIT, body.next()).await.expect("the end").is_none());
    drop(owner);
}

#[tokio::test]
async fn an_iframe_stream_is_padded_framed_and_escaped_so_no_message_can_run_as_script() {
    let server = TestServer::start_with(|c| {
        c.transports.stream_max_bytes = 16 * 1024;
        crate::unthrottled(c);
    })
    .await;
    let owner = server.owner().await;
    let room = owner.create_room("html").await.room.id;
    let nasty = "</script><script>parent.pwned=1</script> <!-- \u{2028}\u{2029} & done";
    let sent = post_message(&owner, room, "nasty", nasty).await;
    let response = owner
        .request(reqwest::Method::GET, "/api/stream/iframe?cursor=0&hello=1")
        .send()
        .await
        .expect("iframe stream");
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], "frame-ancestors 'self'");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    assert_eq!(headers["x-accel-buffering"], "no");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while !text.contains("\"type\":\"synced\"") {
        let chunk = timeout(WAIT, body.next())
            .await
            .expect("opening")
            .expect("chunk");
        text.push_str(std::str::from_utf8(&chunk.expect("bytes")).expect("UTF-8"));
    }
    // A document that starts rendering at once: the prelude pads past the first 2 KiB.
    assert!(text.starts_with("<!DOCTYPE html>"), "{}", &text[..60]);
    let first_script = text.find("<script>").expect("a script");
    assert!(first_script > 2048, "padding of {first_script} bytes");
    // Every script is exactly `parent.tidings(...)`, and the body never ends one early.
    let scripts: Vec<&str> = text.split("<script>").skip(1).collect();
    for script in &scripts {
        let (inside, after) = script.split_once("</script>").expect("closed");
        assert!(
            inside.starts_with("parent.tidings({") && inside.ends_with("})"),
            "{inside}"
        );
        assert_eq!(after, "\n", "nothing between scripts");
        assert!(
            !inside.contains('\u{2028}') && !inside.contains('\u{2029}') && !inside.contains('<')
        );
    }
    let opening = text.len();
    let mut buffer = text.into_bytes();
    let found: Vec<String> = batches(Way::Iframe, &mut buffer)
        .into_iter()
        .flat_map(|b| b.frames)
        .filter_map(|f| match f {
            ServerFrame::Message(m) if m.id == sent.id => Some(m.body),
            _ => None,
        })
        .collect();
    assert_eq!(found, [nasty], "the body arrives intact");

    // The size cut: the stream ends after about stream_max_bytes, and reopening from the
    // cursor carries on without a gap.
    let mut ids = vec![sent.id];
    for i in 0..60 {
        let big = format!("{i} {}", "x".repeat(600));
        ids.push(
            post_message(&owner, room, &format!("big-{i}"), &big)
                .await
                .id,
        );
    }
    let mut total = opening;
    while let Some(chunk) = timeout(WAIT, body.next()).await.expect("until the cut") {
        let chunk = chunk.expect("bytes");
        total += chunk.len();
        buffer.extend_from_slice(&chunk);
    }
    assert!(
        (16 * 1024..64 * 1024).contains(&total),
        "ended after {total} bytes"
    );
    let mut got: Vec<i64> = vec![sent.id];
    let mut cursor = 0;
    for batch in batches(Way::Iframe, &mut buffer) {
        got.extend(batch.frames.iter().filter_map(|f| match f {
            ServerFrame::Message(m) if m.id != sent.id => Some(m.id),
            _ => None,
        }));
        cursor = batch.cursor;
    }
    assert!(got.len() < ids.len(), "the cut came before the end");
    while got.len() < ids.len() {
        let more = owner
            .request(
                reqwest::Method::GET,
                &format!("/api/stream/iframe?cursor={cursor}"),
            )
            .send()
            .await
            .expect("reopen");
        let mut body = more.bytes_stream();
        let mut buffer = Vec::new();
        'read: while let Some(chunk) = timeout(WAIT, body.next()).await.expect("reopened") {
            buffer.extend_from_slice(&chunk.expect("bytes"));
            for batch in batches(Way::Iframe, &mut buffer) {
                got.extend(batch.frames.iter().filter_map(|f| match f {
                    ServerFrame::Message(m) => Some(m.id),
                    _ => None,
                }));
                cursor = batch.cursor;
                if got.len() >= ids.len() {
                    break 'read;
                }
            }
        }
    }
    assert_eq!(got, ids, "every message once, in order, across the cut");
}

#[tokio::test]
async fn a_newer_poll_answers_the_older_at_once_with_no_messages() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let first = {
        let owner = owner.clone();
        tokio::spawn(async move {
            owner
                .request(reqwest::Method::GET, "/api/poll?cursor=0&timeout=25")
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("poll")
                .json::<Batch>()
                .await
                .expect("batch")
        })
    };
    // The second must come after the first is held: poll until the first has answered.
    let started = Instant::now();
    let mut second = None;
    while !first.is_finished() {
        assert!(
            started.elapsed() < WAIT,
            "the first poll was never superseded"
        );
        let poll = owner
            .request(reqwest::Method::GET, "/api/poll?cursor=0&timeout=1")
            .send();
        second = Some(
            poll.await
                .expect("second poll")
                .json::<Batch>()
                .await
                .expect("batch"),
        );
    }
    let first = first.await.expect("first poll");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        first
            .frames
            .iter()
            .all(|f| matches!(f, ServerFrame::Session(_))),
        "{first:?}"
    );
    assert!(second.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_long_polling_user_is_online_between_polls_and_offline_after_the_grace_period() {
    let server = TestServer::start_paused(|c| {
        // Under the harness's WAIT, so the wait for it cannot tie with the test's own.
        c.transports.presence_grace = Duration::from_secs(5);
        c.chat.heartbeat = Duration::from_secs(3600);
    })
    .await;
    let owner = server.owner().await;
    let room = owner.create_room("lobby").await.room.id;
    let poller = server.user("poller").await;
    poller.join(room).await;
    let mut watcher = owner.chat().await;
    let short_poll = |poller: Client| async move {
        let answer = poller
            .request(reqwest::Method::GET, "/api/poll?timeout=0")
            .send()
            .await
            .expect("poll");
        assert_eq!(answer.status(), StatusCode::OK);
    };
    short_poll(poller.clone()).await;
    until_online(&mut watcher, poller.user.id).await;
    // Polling again within the grace period: no offline, no second online.
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(4)).await;
        short_poll(poller.clone()).await;
    }
    let last_poll = Instant::now();
    let offline = watcher
        .expect("presence offline", |f| {
            matches!(f, ServerFrame::Presence { .. })
        })
        .await;
    assert!(
        matches!(&offline, ServerFrame::Presence { user, status: PresenceStatus::Offline } if user.id == poller.user.id),
        "{offline:?}"
    );
    assert_eq!(
        last_poll.elapsed(),
        Duration::from_secs(5),
        "offline exactly at the grace period"
    );
}

#[tokio::test]
async fn frames_posted_over_http_are_carried_out_as_on_the_websocket() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let room = owner.create_room("http").await.room.id;
    let post = |frame: serde_json::Value| {
        owner
            .request(reqwest::Method::POST, "/api/frames")
            .json(&frame)
            .send()
    };
    let send =
        serde_json::json!({"type": "send", "room": room, "client_id": "h-1", "body": "over http"});
    let answer: Vec<ServerFrame> = post(send.clone())
        .await
        .expect("post")
        .json()
        .await
        .expect("frames");
    let [ServerFrame::Ack { client_id, id, .. }] = answer.as_slice() else {
        panic!("{answer:?}");
    };
    assert_eq!(client_id, "h-1");
    // Idempotent on the client id, as on the WebSocket.
    let again: Vec<ServerFrame> = post(send)
        .await
        .expect("post")
        .json()
        .await
        .expect("frames");
    assert!(matches!(again.as_slice(), [ServerFrame::Ack { id: same, .. }] if same == id));
    // A refusal is the same error frame, with the client id for the outbox.
    let foreign =
        serde_json::json!({"type": "send", "room": 9999, "client_id": "h-2", "body": "x"});
    let refused: Vec<ServerFrame> = post(foreign)
        .await
        .expect("post")
        .json()
        .await
        .expect("frames");
    assert!(
        matches!(refused.as_slice(), [ServerFrame::Error(e)] if e.client_id.as_deref() == Some("h-2")),
        "{refused:?}"
    );
    // A history page comes back as the history frame; typing as nothing.
    let history: Vec<ServerFrame> = post(serde_json::json!({"type": "history", "room": room}))
        .await
        .expect("post")
        .json()
        .await
        .expect("frames");
    assert!(matches!(history.as_slice(), [ServerFrame::History(page)] if page.messages.len() == 1));
    let typing: Vec<ServerFrame> = post(serde_json::json!({"type": "typing", "room": room}))
        .await
        .expect("post")
        .json()
        .await
        .expect("frames");
    assert!(typing.is_empty());
    // Garbage is a 400 with the code the WebSocket would have sent in its error frame.
    let bad = post(serde_json::json!({"type": "dance"}))
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: ErrorBody = bad.json().await.expect("error body");
    assert_eq!(body.code, ErrorCode::UnknownType);
    // A cursor from elsewhere (past the newest message) starts over from the newest.
    let latest = match answer.as_slice() {
        [ServerFrame::Ack { id, .. }] => *id,
        _ => unreachable!(),
    };
    let reset: Batch = owner.get("/api/poll?cursor=999999&timeout=0").await;
    assert_eq!(reset.cursor, latest);
    // The offer lists every transport.
    let offered: Transports = owner.get("/api/transports").await;
    let kinds: HashSet<TransportKind> = offered.transports.into_iter().collect();
    for kind in TransportKind::LADDER {
        assert!(kinds.contains(&kind), "{kind:?}");
    }
    assert_eq!(offered.poll_timeout_ms, 25_000);
    let _ = ClientFrame::Sync { since: 0 };
}

#[tokio::test]
async fn a_cookie_post_needs_the_csrf_header_a_cross_site_form_cannot_send() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let room = owner.create_room("csrf").await.room.id;
    let http = tidings_tests::http_client();
    let frame = serde_json::json!({"type": "send", "room": room, "client_id": "k-1", "body": "hi"});
    let cookie = format!("tidings_session={}", owner.token);
    let without = http
        .post(server.url("/api/frames"))
        .header("cookie", &cookie)
        .json(&frame)
        .send()
        .await
        .expect("post");
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let body: ErrorBody = without.json().await.expect("error body");
    assert_eq!(body.code, ErrorCode::CsrfHeaderRequired);
    let with = http
        .post(server.url("/api/frames"))
        .header("cookie", &cookie)
        .header("x-tidings-csrf", "1")
        .json(&frame)
        .send()
        .await
        .expect("post");
    assert_eq!(with.status(), StatusCode::OK);
    // Bearer tokens are not sent by browsers on their own: no header needed.
    let bearer = owner
        .request(reqwest::Method::POST, "/api/frames")
        .json(&frame)
        .send()
        .await
        .expect("post");
    assert_eq!(bearer.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_the_websocket_switched_off_an_upgrade_is_not_found_and_not_offered() {
    let server = TestServer::start_with(|config| config.transports.websocket = false).await;
    let owner = server.owner().await;

    let refused = timeout(WAIT, tokio_tungstenite::connect_async(owner.chat_request()))
        .await
        .expect("an answer in time");
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
        panic!("the upgrade was not refused: {refused:?}");
    };
    assert_eq!(response.status(), 404);
    let error: ErrorBody =
        serde_json::from_slice(response.body().as_deref().unwrap_or_default()).expect("error body");
    assert_eq!(error.code, ErrorCode::NotFound);
    assert_eq!(
        error.message,
        "the WebSocket is switched off on this server"
    );

    let offered: Transports = owner.get("/api/transports").await;
    assert!(
        !offered.transports.contains(&TransportKind::WebSocket),
        "{:?}",
        offered.transports
    );
    assert!(offered.transports.contains(&TransportKind::Sse));
    server.stop().await;
}
