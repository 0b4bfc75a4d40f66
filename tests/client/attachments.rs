//! Attachments through the client core and the real server: uploaded with progress, carried by
//! a message from the outbox, cached, downloaded; a member who was away converges on them (and
//! on a deletion that takes them) over the WebSocket and over long-polling; a cancelled upload
//! leaves nothing behind.

use std::sync::{Arc, Mutex};

use tidings_client::ClientEvent;
use tidings_client::store::{Draft, LocalStore};
use tidings_proto::v1::{Attachment, ErrorCode, TransportKind};
use tidings_tests::{TestClient, TestServer, png};

async fn converges_on_attachments(transport: Option<TransportKind>) {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    let mut bob = TestClient::over(&server, "bob", transport).await;
    let room = ana.client.create_room("plans").await.unwrap().room.id;
    bob.client.join_room(room).await.unwrap();
    ana.online().await;
    bob.online().await;

    // Uploaded with progress: every report counts up to the whole file, in order.
    let photo_bytes = png(900, 700);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&reports);
    let photo = ana
        .client
        .upload(
            room,
            "plan.png",
            "image/png",
            photo_bytes.clone().into(),
            move |sent, total| {
                recorded.lock().unwrap().push((sent, total));
            },
        )
        .await
        .unwrap();
    let reports = reports.lock().unwrap().clone();
    let total = photo_bytes.len() as u64;
    assert!(reports.len() > 1, "{reports:?}");
    assert!(reports.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(reports.last(), Some(&(total, total)));
    assert_eq!(photo.size, total);
    let notes = ana
        .client
        .upload(
            room,
            "notes.txt",
            "text/plain",
            "bring maps".into(),
            |_, _| {},
        )
        .await
        .unwrap();

    // Away: bob's app is closed while ana sends both, then deletes the one with the notes.
    bob.client.shutdown();
    let with = |body: &str, attachments: Vec<Attachment>| Draft {
        attachments,
        ..Draft::text(room, body)
    };
    let queued = ana
        .client
        .send_message(with("the plan", vec![photo.clone()]))
        .await
        .unwrap();
    assert_eq!(
        queued.attachments,
        std::slice::from_ref(&photo),
        "the outbox keeps them"
    );
    ana.client
        .send_message(with("", vec![notes.clone()]))
        .await
        .unwrap();
    let sent = ana
        .until(
            "the notes",
            |e| matches!(e, ClientEvent::Message(m) if m.attachments.first() == Some(&notes)),
        )
        .await;
    let ClientEvent::Message(sent) = sent else {
        unreachable!()
    };
    ana.client.delete_message(sent.id).await.unwrap();

    // Back: the sync brings both and the deletion; the cache holds what the server holds.
    let mut bob = bob.reopen_over(transport);
    bob.until(
        "the deletion",
        |e| matches!(e, ClientEvent::Changed(m) if m.id == sent.id && m.deleted_at.is_some()),
    )
    .await;
    let cached = LocalStore::open(&bob.dir.path().join("client.db"))
        .unwrap()
        .history(room, None, 50)
        .unwrap();
    assert_eq!(cached.len(), 2);
    assert_eq!(
        (cached[0].body.as_str(), cached[0].attachments.as_slice()),
        ("the plan", std::slice::from_ref(&photo))
    );
    assert!(cached[1].deleted_at.is_some() && cached[1].attachments.is_empty());
    assert_eq!(
        cached,
        bob.client.history(room, None, 50).await.unwrap().messages,
        "the cache is what the server holds"
    );

    // The bytes, and the thumbnail made on the server; the deleted notes are gone for good.
    let got = bob.client.attachment(&photo.id, false).await.unwrap();
    assert_eq!(got.as_ref(), photo_bytes.as_slice());
    let thumbnail = bob.client.attachment(&photo.id, true).await.unwrap();
    let small = image::load_from_memory(&thumbnail).unwrap();
    assert_eq!((small.width(), small.height()), (320, 249));
    let gone = bob.client.attachment(&notes.id, false).await.unwrap_err();
    assert_eq!(gone.code(), Some(ErrorCode::NotFound), "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_away_converges_on_attachments_over_the_websocket() {
    converges_on_attachments(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_away_converges_on_attachments_over_long_polling() {
    converges_on_attachments(Some(TransportKind::LongPolling)).await;
}

/// Dropping an upload's future cancels it mid-way; the server keeps nothing of it, and the
/// next upload goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_upload_leaves_nothing_behind() {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    let room = ana.client.create_room("plans").await.unwrap().room.id;
    ana.online().await;

    let big = vec![7u8; 20 * 1024 * 1024];
    let total = big.len() as u64;
    let (first, mut started) = tokio::sync::mpsc::unbounded_channel();
    let last = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&last);
    let client = ana.client.clone();
    let upload = tokio::spawn(async move {
        client
            .upload(
                room,
                "big.bin",
                "application/octet-stream",
                big.into(),
                move |sent, _| {
                    *seen.lock().unwrap() = sent;
                    let _ = first.send(());
                },
            )
            .await
    });
    tokio::time::timeout(std::time::Duration::from_secs(10), started.recv())
        .await
        .expect("the upload starts")
        .expect("a progress report");
    upload.abort();
    assert!(
        upload.await.unwrap_err().is_cancelled(),
        "cancelled, not finished"
    );
    let reached = *last.lock().unwrap();
    assert!(reached < total, "cut off at {reached} of {total}");

    let small = ana
        .client
        .upload(
            room,
            "small.bin",
            "application/octet-stream",
            vec![1u8; 10].into(),
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(
        server.attachments_kept(),
        std::slice::from_ref(&small.id),
        "nothing of the cancelled one"
    );
}
