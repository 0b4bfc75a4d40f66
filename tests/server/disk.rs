//! A disk that fills up: sends are refused with a clear error and nothing of them is stored,
//! reads and feeds keep serving, and sends succeed again once space is back — no restart.

use tidings_client::ClientEvent;
use tidings_proto::v1::{ClientFrame, ErrorCode, HistoryPage, SendMessage, ServerFrame};
use tidings_tests::{TestClient, TestServer, fill_up, in_private_mounts, mount_tmpfs};

/// A body large enough that a few fill what is left of a small disk.
fn big(i: usize) -> String {
    format!("{i:04} {}", "y".repeat(60_000))
}

#[tokio::test]
async fn a_full_disk_refuses_sends_keeps_serving_and_recovers_when_space_returns() {
    if !in_private_mounts(
        "disk::a_full_disk_refuses_sends_keeps_serving_and_recovers_when_space_returns",
    ) {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    mount_tmpfs(&data, "4m");
    let server = TestServer::start_with(|config| {
        config.data_dir = data.clone();
        crate::unthrottled(config);
    })
    .await;
    let ana = server.user("ana").await;
    let room = ana.create_room("ops").await.room.id;
    let kept = tidings_tests::post_message(&ana, room, "k0", "before the disk filled").await;
    let mut feed = ana.feed(None);
    feed.expect(tidings_proto::v1::EVENT_SESSION).await;
    let mut chat = ana.chat().await;
    // A member on the client core, whose outbox must hold what the full disk refused.
    let mut bo = TestClient::new(&server, "bo").await;
    bo.client.join_room(room).await.unwrap();
    bo.online().await;

    // Fill the disk, then send big messages until SQLite reports it full (the WAL may still
    // have room for a few).
    let filler = fill_up(&data);
    let mut refused = None;
    for i in 0..200 {
        let client_id = format!("{i:032}");
        chat.send(&ClientFrame::Send {
            room,
            client_id: client_id.clone(),
            body: big(i),
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
        match chat
            .expect("ack or error", |f| {
                matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error(_))
            })
            .await
        {
            ServerFrame::Ack { .. } => continue,
            ServerFrame::Error(error) => {
                refused = Some((client_id, error));
                break;
            }
            _ => unreachable!(),
        }
    }
    let (client_id, error) = refused.expect("SQLite reported the disk full");
    assert_eq!(error.code, ErrorCode::Storage, "{error:?}");
    assert_eq!(error.client_id.as_deref(), Some(client_id.as_str()));
    assert!(error.message.contains("disk is full"), "{}", error.message);
    // Over HTTP, the same: 507 with the error body. (A WAL checkpoint can free room for a few
    // more writes meanwhile, so it may take more than one.)
    let mut refused_over_http = None;
    for i in 0..50 {
        let response = ana
            .request(
                reqwest::Method::POST,
                &format!("/api/rooms/{room}/messages"),
            )
            .json(&SendMessage {
                client_id: Some(format!("http-while-full-{i}")),
                body: big(1000 + i),
                reply_to: None,
                attachments: Vec::new(),
            })
            .send()
            .await
            .unwrap();
        if response.status() != 201 {
            refused_over_http = Some(response);
            break;
        }
    }
    let response = refused_over_http.expect("refused over HTTP too");
    assert_eq!(response.status(), 507);
    let body: tidings_proto::v1::ErrorBody = response.json().await.unwrap();
    assert_eq!(body.code, ErrorCode::Storage);

    // Reads and feeds go on.
    let page: HistoryPage = ana
        .get(&format!("/api/rooms/{room}/messages?limit=500"))
        .await;
    assert!(page.messages.iter().any(|m| m.id == kept.id));
    assert!(
        page.messages
            .iter()
            .all(|m| m.client_id.as_deref() != Some(client_id.as_str())),
        "nothing of the refused send is stored"
    );
    feed.expect(tidings_proto::v1::EVENT_SESSION).await;
    // A send from the client core meanwhile waits in its outbox, however often it is refused.
    let queued = bo
        .client
        .send(room, "written while the disk was full")
        .await
        .unwrap();
    assert_eq!(bo.client.outbox().await.unwrap().len(), 1);

    // Space comes back: the same send goes through, on the same connection.
    std::fs::remove_file(filler).unwrap();
    chat.send(&ClientFrame::Send {
        room,
        client_id: client_id.clone(),
        body: big(0),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await;
    let ServerFrame::Ack { id, .. } = chat
        .expect("the ack", |f| matches!(f, ServerFrame::Ack { .. }))
        .await
    else {
        unreachable!()
    };
    // And the client core's message goes out by itself, once.
    bo.until(
        "the outbox message stored",
        |e| matches!(e, ClientEvent::Sent { client_id, .. } if *client_id == queued.client_id),
    )
    .await;
    assert!(bo.client.outbox().await.unwrap().is_empty());
    let page: HistoryPage = ana
        .get(&format!("/api/rooms/{room}/messages?limit=500"))
        .await;
    assert!(page.messages.iter().any(|m| m.id == id));
    let copies = page
        .messages
        .iter()
        .filter(|m| m.body == "written while the disk was full")
        .count();
    assert_eq!(copies, 1);
    server.stop().await;
}
