//! Chatting: rooms, DMs, acks, idempotency, history across a restart.

use std::time::Duration;

use futures_util::StreamExt;
use tidings_proto::v1::{ClientFrame, HistoryPage, PresenceStatus, RoomState, ServerFrame, close};
use tidings_tests::{Client, TestServer, post_message};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

#[tokio::test]
async fn two_users_chat_in_a_room() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await;
    bo.join(room.room.id).await;
    let mut ana_chat = ana.chat().await;
    let mut bo_chat = bo.chat().await;
    ana_chat
        .send(&ClientFrame::Send {
            room: room.room.id,
            client_id: "c1".into(),
            body: "hello @bo".into(),
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
    let ack = ana_chat
        .expect("ack", |f| matches!(f, ServerFrame::Ack { .. }))
        .await;
    let ServerFrame::Ack { client_id, id, .. } = ack else {
        unreachable!()
    };
    assert_eq!(client_id, "c1");
    let got = bo_chat
        .expect("message", |f| matches!(f, ServerFrame::Message(_)))
        .await;
    let ServerFrame::Message(m) = got else {
        unreachable!()
    };
    assert_eq!(m.id, id);
    assert_eq!(m.body, "hello @bo");
    assert_eq!(m.author.name, "ana");
    assert_eq!(m.mentions, vec![bo.user.id]);
    server.stop().await;
}

#[tokio::test]
async fn a_dm_reaches_only_its_two_members() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let cy = server.user("cy").await;
    let general = ana.create_room("general").await.room.id;
    bo.join(general).await;
    cy.join(general).await;
    let dm = ana.dm("bo").await;
    assert_eq!(
        dm.room.dm_peer.as_ref().map(|p| p.name.as_str()),
        Some("bo")
    );
    // Opening it again, from either side, is the same room.
    assert_eq!(bo.dm("ana").await.room.id, dm.room.id);

    let mut bo_chat = bo.chat().await;
    let mut cy_chat = cy.chat().await;
    post_message(&ana, dm.room.id, "d1", "just us").await;
    // A message cy can see, sent after the DM: if cy had been sent the DM, it would come first.
    post_message(&ana, general, "g1", "everyone").await;
    let ServerFrame::Message(m) = bo_chat
        .expect("dm", |f| matches!(f, ServerFrame::Message(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!((m.room, m.body.as_str()), (dm.room.id, "just us"));
    let ServerFrame::Message(m) = cy_chat
        .expect("message", |f| matches!(f, ServerFrame::Message(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!((m.room, m.body.as_str()), (general, "everyone"));
    // cy cannot read the DM's history either.
    let response = cy
        .request(
            reqwest::Method::GET,
            &format!("/api/rooms/{}/messages", dm.room.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn resending_a_client_id_stores_one_message() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let room = ana.create_room("ops").await.room.id;
    let mut chat = ana.chat().await;
    let send = ClientFrame::Send {
        room,
        client_id: "same".into(),
        body: "once".into(),
        reply_to: None,
        attachments: Vec::new(),
    };
    chat.send(&send).await;
    chat.send(&send).await;
    let mut acked = Vec::new();
    while acked.len() < 2 {
        if let ServerFrame::Ack { id, .. } = chat
            .expect("ack", |f| matches!(f, ServerFrame::Ack { .. }))
            .await
        {
            acked.push(id);
        }
    }
    assert_eq!(acked[0], acked[1], "both sends ack the same stored message");
    // And over HTTP, the same rule.
    let again = post_message(&ana, room, "same", "once").await;
    assert_eq!(again.id, acked[0]);
    let page: HistoryPage = ana.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(page.messages.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn history_survives_a_restart() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(post_message(&ana, room, &format!("a{i}"), &format!("ana {i}")).await);
        sent.push(post_message(&bo, room, &format!("b{i}"), &format!("bo {i}")).await);
    }
    let server = server.restart().await;
    let bo = bo.at(&server);
    let page: HistoryPage = bo
        .get(&format!("/api/rooms/{room}/messages?limit=200"))
        .await;
    assert_eq!(page.messages, sent);
    assert!(!page.has_more);
    // Paging backwards covers the same messages without overlap.
    let newest: HistoryPage = bo.get(&format!("/api/rooms/{room}/messages?limit=4")).await;
    assert!(newest.has_more);
    assert_eq!(newest.messages, sent[6..]);
    let older: HistoryPage = bo
        .get(&format!(
            "/api/rooms/{room}/messages?limit=4&before={}",
            newest.messages[0].id
        ))
        .await;
    assert_eq!(older.messages, sent[2..6]);
    // The chat channel sees the same page, and the session from before the restart still works.
    let mut chat = bo.chat().await;
    chat.send(&ClientFrame::History {
        room,
        before: None,
        limit: Some(4),
    })
    .await;
    let ServerFrame::History(page) = chat
        .expect("history", |f| matches!(f, ServerFrame::History(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(page.messages, sent[6..]);
    server.stop().await;
}

#[tokio::test]
async fn sync_after_reconnect_delivers_what_was_missed() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    let first = post_message(&ana, room, "m0", "before").await;
    let mut missed = Vec::new();
    for i in 1..=3 {
        missed.push(post_message(&ana, room, &format!("m{i}"), &format!("missed {i}")).await);
    }
    let mut chat = bo.chat().await;
    assert_eq!(chat.hello().latest_id, missed[2].id);
    let state = chat
        .hello()
        .rooms
        .iter()
        .find(|r| r.room.id == room)
        .cloned()
        .expect("room in hello");
    assert_eq!(state.unread, 4);
    chat.send(&ClientFrame::Sync { since: first.id }).await;
    let mut got = Vec::new();
    loop {
        match chat
            .expect("sync answer", |f| {
                matches!(f, ServerFrame::Message(_) | ServerFrame::Synced { .. })
            })
            .await
        {
            ServerFrame::Message(m) => got.push(m),
            ServerFrame::Synced {
                latest_id,
                has_more,
            } => {
                assert_eq!(latest_id, missed[2].id);
                assert!(!has_more);
                break;
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(got, missed);
    // Reading moves the marker and clears the unread count.
    chat.send(&ClientFrame::Read {
        room,
        message_id: missed[2].id,
    })
    .await;
    chat.expect("read", |f| matches!(f, ServerFrame::Read { .. }))
        .await;
    let rooms: Vec<RoomState> = bo.get("/api/rooms").await;
    let state = rooms.iter().find(|r| r.room.id == room).unwrap();
    assert_eq!((state.unread, state.last_read_id), (0, missed[2].id));
    server.stop().await;
}

#[tokio::test]
async fn presence_stays_among_the_people_who_share_a_room() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let carol = server.user("carol").await;
    let bo = server.user("bo").await;
    let dm = ana.dm("carol").await.room.id;
    let own = bo.create_room("bo-alone").await.room.id;
    let _ana_chat = ana.chat().await;
    let _carol_chat = carol.chat().await;
    let mut bo_chat = bo.chat().await;
    let me = bo_chat.hello().user.id;
    assert_eq!(
        bo_chat.hello().online,
        vec![me],
        "only bo, who shares no room"
    );
    // A join the server refuses (someone else's DM) reveals nothing either.
    let refused = bo
        .request(reqwest::Method::POST, &format!("/api/rooms/{dm}/join"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    post_message(&bo, own, "m1", "anyone?").await;
    bo_chat
        .expect("bo's own message", |frame| {
            if let ServerFrame::Presence { user, .. } = frame {
                assert_eq!(user.id, me, "presence of someone bo shares no room with");
            }
            matches!(frame, ServerFrame::Message(_))
        })
        .await;
    server.stop().await;
}

#[tokio::test]
async fn typing_and_presence_reach_the_others() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    let mut bo_chat = bo.chat().await;
    let ana_chat = ana.chat().await;
    let ServerFrame::Presence { user, status } = bo_chat
        .expect(
            "ana's presence",
            |f| matches!(f, ServerFrame::Presence { user, .. } if user.name == "ana"),
        )
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        (user.name.as_str(), status),
        ("ana", PresenceStatus::Online)
    );
    let mut ana_chat = ana_chat;
    ana_chat.send(&ClientFrame::Typing { room }).await;
    let ServerFrame::Typing { room: r, user } = bo_chat
        .expect("typing", |f| matches!(f, ServerFrame::Typing { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!((r, user.name.as_str()), (room, "ana"));
    // The same over HTTP, for a client without the chat channel; someone outside the room may
    // not.
    let typing = |client: &Client| {
        client
            .request(reqwest::Method::POST, &format!("/api/rooms/{room}/typing"))
            .send()
    };
    let answer = typing(&ana).await.expect("typing");
    assert_eq!(answer.status(), reqwest::StatusCode::NO_CONTENT);
    let ServerFrame::Typing { room: r, user } = bo_chat
        .expect("typing over HTTP", |f| {
            matches!(f, ServerFrame::Typing { .. })
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!((r, user.name.as_str()), (room, "ana"));
    let cy = server.user("cy").await;
    let answer = typing(&cy).await.expect("typing");
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    drop(ana_chat);
    let ServerFrame::Presence { user, status } = bo_chat
        .expect("offline", |f| {
            matches!(
                f,
                ServerFrame::Presence {
                    status: PresenceStatus::Offline,
                    ..
                }
            )
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        (user.name.as_str(), status),
        ("ana", PresenceStatus::Offline)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_resyncs() {
    let server = TestServer::start_with(|c| {
        c.limits.send_queue = 4;
        crate::unthrottled(c);
        c.chat.write_timeout = std::time::Duration::from_millis(500);
    })
    .await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    let mut slow = bo.chat().await;
    // Big messages fill the socket buffers quickly; bo reads nothing meanwhile.
    let body = "x".repeat(60 * 1024);
    let mut last = 0;
    for i in 0..400 {
        last = post_message(&ana, room, &format!("big{i}"), &body).await.id;
    }
    // Now bo reads what was buffered, then the end: the close frame (4000) when it still fitted
    // in the socket, else nothing — a connection that cannot be written to within the write
    // timeout is dropped without one.
    let mut seen = 0;
    loop {
        match tokio::time::timeout(tidings_tests::WAIT, slow.socket.next())
            .await
            .expect("frame in time")
        {
            Some(Ok(WsMessage::Text(_))) => seen += 1,
            Some(Ok(WsMessage::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), close::LAGGING);
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)))
            | Some(Err(WsError::Io(_)))
            | None => break,
            other => panic!("expected the connection to end, got {other:?}"),
        }
    }
    assert!(
        seen < 400,
        "bo was cut off before getting everything ({seen})"
    );
    // Reconnecting and syncing brings every message, exactly once.
    let mut chat = bo.chat().await;
    let mut since = 0;
    let mut ids = Vec::new();
    loop {
        chat.send(&ClientFrame::Sync { since }).await;
        loop {
            match chat
                .expect("sync", |f| {
                    matches!(f, ServerFrame::Message(_) | ServerFrame::Synced { .. })
                })
                .await
            {
                ServerFrame::Message(m) => {
                    since = m.id;
                    ids.push(m.id);
                }
                ServerFrame::Synced { has_more, .. } => {
                    if has_more {
                        break;
                    }
                    assert_eq!(ids.len(), 400);
                    assert_eq!(*ids.last().unwrap(), last);
                    assert!(ids.windows(2).all(|w| w[0] < w[1]));
                    server.stop().await;
                    return;
                }
                _ => unreachable!(),
            }
        }
    }
}

#[tokio::test]
async fn shutdown_acks_in_flight_sends_and_loses_none() {
    let server = TestServer::start_with(|c| {
        crate::unthrottled(c);
    })
    .await;
    let ana = server.user("ana").await;
    let room = ana.create_room("ops").await.room.id;
    let mut chat = ana.chat().await;
    for i in 0..50 {
        chat.send(&ClientFrame::Send {
            room,
            client_id: format!("s{i}"),
            body: format!("in flight {i}"),
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
    }
    // Wait until the server has taken at least one, so the shutdown races the rest.
    let ServerFrame::Ack { id, .. } = chat
        .expect("first ack", |f| matches!(f, ServerFrame::Ack { .. }))
        .await
    else {
        unreachable!()
    };
    let stopping = tokio::spawn(server.stop());
    let mut acked = vec![id];
    let closed = loop {
        match tokio::time::timeout(tidings_tests::WAIT, chat.socket.next())
            .await
            .expect("frame in time")
        {
            Some(Ok(WsMessage::Text(text))) => {
                if let ServerFrame::Ack { id, .. } = serde_json::from_str(text.as_str()).unwrap() {
                    acked.push(id);
                }
            }
            Some(Ok(WsMessage::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed, close::GOING_AWAY);
    let (dir, config, _) = stopping.await.unwrap();
    // Every acknowledged message is on disk.
    let store = tidings_store::Store::open(&config.database_path(), Default::default()).unwrap();
    let stored = store.history(room, None, 200).await.unwrap();
    let stored: Vec<i64> = stored.iter().map(|m| m.id).collect();
    for id in &acked {
        assert!(stored.contains(id), "acked {id} is not stored: {stored:?}");
    }
    store.close().await;
    drop(dir);
}

/// Reads server frames from a raw socket (no WebSocket library, so nothing answers pings) until a
/// close frame; returns its code and the opcodes seen before it.
async fn raw_until_close(stream: &mut tokio::net::TcpStream) -> (u16, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut opcodes = Vec::new();
    // Skip the HTTP response head.
    let mut head_done = false;
    let deadline = tokio::time::Instant::now() + tidings_tests::WAIT;
    loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("the server closes in time")
            .expect("read");
        assert!(
            n > 0,
            "connection ended without a close frame; opcodes {opcodes:?}"
        );
        buf.extend_from_slice(&chunk[..n]);
        if !head_done {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            assert!(
                buf.starts_with(b"HTTP/1.1 101"),
                "{}",
                String::from_utf8_lossy(&buf)
            );
            buf.drain(..end + 4);
            head_done = true;
        }
        // Parse every complete (unmasked) server frame in the buffer.
        loop {
            if buf.len() < 2 {
                break;
            }
            let opcode = buf[0] & 0x0f;
            let (len, header) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < header + len {
                break;
            }
            let payload: Vec<u8> = buf[header..header + len].to_vec();
            buf.drain(..header + len);
            if opcode == 0x8 {
                return (u16::from_be_bytes([payload[0], payload[1]]), opcodes);
            }
            opcodes.push(opcode);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_misses_heartbeats_is_closed() {
    use tokio::io::AsyncWriteExt;
    let heartbeat = std::time::Duration::from_secs(3);
    let server = TestServer::start_paused(|c| c.chat.heartbeat = heartbeat).await;
    let ana = server.user("ana").await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /api/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: tidings.v1\r\nAuthorization: Bearer {}\r\n\r\n",
        server.addr, ana.token
    );
    let connected = tokio::time::Instant::now();
    stream.write_all(request.as_bytes()).await.unwrap();
    let (code, opcodes) = raw_until_close(&mut stream).await;
    assert_eq!(code, close::HEARTBEAT_TIMEOUT);
    // The hello (text; a connection is not told of its own arrival), then a ping at each of the
    // first two heartbeats, unanswered; at the third, silent for more than two heartbeats, the
    // connection is closed.
    assert_eq!(opcodes, [0x1, 0x9, 0x9]);
    assert_eq!(connected.elapsed(), heartbeat * 3);
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_sends_is_stored_in_the_order_sent() {
    let server = TestServer::start_with(|c| {
        crate::unthrottled(c);
    })
    .await;
    let ana = server.user("ana").await;
    let room = ana.create_room("ops").await.room.id;
    let mut chat = ana.chat().await;
    for i in 0..100 {
        chat.send(&ClientFrame::Send {
            room,
            client_id: format!("o{i}"),
            body: format!("{i}"),
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
    }
    let mut acks = 0;
    while acks < 100 {
        if let ServerFrame::Ack { .. } = chat
            .expect("ack", |f| matches!(f, ServerFrame::Ack { .. }))
            .await
        {
            acks += 1;
        }
    }
    let page: HistoryPage = ana
        .get(&format!("/api/rooms/{room}/messages?limit=200"))
        .await;
    let bodies: Vec<String> = page.messages.iter().map(|m| m.body.clone()).collect();
    let sent: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(bodies, sent);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_closes_first_gets_its_close_answered() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let mut chat = ana.chat().await;
    chat.send_raw(WsMessage::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "closing the laptop".into(),
    })))
    .await;
    // RFC 6455 §5.5.1: the answer echoes the code; the server then closes the TCP connection.
    let closed = chat.closed().await;
    assert_eq!(closed.code, 1001, "{closed:?}");
    server.stop().await;
}

/// A `sync` answered while messages keep arriving: nothing newer than the answer's `synced`
/// comes before it (the replay is not cut into by live messages), everything after it is newer
/// and in order, and every message arrives.
#[tokio::test]
async fn a_sync_answered_while_messages_arrive_is_not_cut_into() {
    let server = TestServer::start_with(|c| {
        crate::unthrottled(c);
    })
    .await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    // A replay of some megabytes, which takes a while to write.
    let old = "x".repeat(8 * 1024);
    for i in 0..400 {
        post_message(&ana, room, &format!("old{i}"), &old).await;
    }
    let mut chat = bo.chat().await;
    chat.send(&ClientFrame::Sync { since: 0 }).await;
    // All at once, while the answer is read and written.
    let keys: Vec<String> = (0..100).map(|i| format!("new{i}")).collect();
    let posting =
        futures_util::future::join_all(keys.iter().map(|k| post_message(&ana, room, k, "during")));
    let reading = async {
        let mut before = Vec::new();
        let mut synced = None;
        let mut after: Vec<i64> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        // Until the sync is answered and every message has come.
        while synced.is_none() || seen.len() < 500 {
            match chat
                .expect("messages", |f| {
                    matches!(f, ServerFrame::Message(_) | ServerFrame::Synced { .. })
                })
                .await
            {
                ServerFrame::Message(m) if synced.is_none() => {
                    seen.insert(m.id);
                    before.push(m.id);
                }
                ServerFrame::Message(m) => {
                    seen.insert(m.id);
                    after.push(m.id);
                }
                ServerFrame::Synced {
                    latest_id,
                    has_more,
                } => {
                    assert!(!has_more);
                    synced = Some(latest_id);
                }
                _ => unreachable!(),
            }
        }
        (before, synced.unwrap(), after, seen)
    };
    let (new, (before, synced, after, seen)) = tokio::join!(posting, reading);
    assert!(
        before.iter().all(|id| *id <= synced),
        "a message newer than the sync's answer came inside it: {before:?} then synced {synced}"
    );
    assert!(
        after.windows(2).all(|w| w[0] < w[1]) && after.first().is_none_or(|id| *id > synced),
        "after synced {synced}: {after:?}"
    );
    let all: Vec<i64> = ana.whole_history(room).await.iter().map(|m| m.id).collect();
    assert_eq!(all.len(), 500);
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), all);
    assert_eq!(all.last(), new.iter().map(|m| m.id).max().as_ref());
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_keep_no_task_and_each_is_served_when_woken() {
    // The server runs on this test's runtime, so its tasks are counted here. An idle chat
    // connection's state is parked without a task; a message is written to it by the fan-out,
    // and a frame from its client starts a task that answers it.
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let mut chats = Vec::new();
    for _ in 0..20 {
        chats.push(bo.chat().await);
    }
    let few = before + 5;
    let idle = |what: &'static str| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let alive = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            if alive <= few {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {alive} tasks alive, {before} before 20 connections"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    idle("after the hellos").await;

    let sent = post_message(&ana, room, "m1", "to everyone").await;
    for chat in &mut chats {
        chat.send(&ClientFrame::Sync { since: 0 }).await;
    }
    for chat in &mut chats {
        let got = chat
            .expect("message", |f| matches!(f, ServerFrame::Message(_)))
            .await;
        assert!(matches!(got, ServerFrame::Message(m) if m.id == sent.id));
        let synced = chat
            .expect("synced", |f| matches!(f, ServerFrame::Synced { .. }))
            .await;
        assert!(
            matches!(synced, ServerFrame::Synced { latest_id, .. } if latest_id >= sent.id),
            "{synced:?}"
        );
    }
    idle("after the answers").await;
    server.stop().await;
}
