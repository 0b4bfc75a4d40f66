//! Attachments on the real server: an image and a file uploaded, downloaded by members only and
//! never served as a page; and each bad upload refused with a clear error and nothing kept.

use reqwest::{Method, StatusCode};
use tidings_proto::v1::{
    Attachment, ClientFrame, ErrorBody, ErrorCode, HistoryPage, SendMessage, ServerFrame,
};
use tidings_tests::{Client, TestServer, png};

/// The CRC-32 a PNG chunk ends with.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A decompression bomb: a few dozen bytes whose header promises `side` × `side` RGBA pixels.
fn bomb(side: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut header = Vec::new();
    header.extend(side.to_be_bytes());
    header.extend(side.to_be_bytes());
    header.extend([8, 6, 0, 0, 0]);
    chunk(b"IHDR", &header);
    // A zlib stream of a few zero bytes: what follows would be inflated into gigabytes.
    chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    );
    chunk(b"IEND", &[]);
    out
}

async fn upload(
    client: &Client,
    room: i64,
    name: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    client
        .request(
            Method::POST,
            &format!("/api/rooms/{room}/attachments?name={name}"),
        )
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn refused(response: reqwest::Response) -> (StatusCode, ErrorBody) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn members_download_an_image_its_thumbnail_and_a_file_never_served_as_a_page() {
    let server = TestServer::start().await;
    let ana = server.owner().await;
    let bob = server.user("bob").await;
    let cy = server.user("cy").await;
    let ops = ana.create_room("ops").await.room.id;
    bob.join(ops).await;

    let photo = png(800, 600);
    let response = upload(&ana, ops, "..%2F..%2Fphoto.png", "image/png", photo.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let image: Attachment = response.json().await.unwrap();
    assert_eq!(
        (image.name.as_str(), image.content_type.as_str(), image.size),
        ("photo.png", "image/png", photo.len() as u64),
        "the directories are dropped from the name"
    );
    let size = image.image.expect("an image's size");
    assert_eq!((size.width, size.height), (800, 600));

    let got = bob.fetch(&format!("/api/attachments/{}", image.id)).await;
    assert_eq!(got.status(), StatusCode::OK);
    let headers = got.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), photo.as_slice());

    let thumb = bob
        .fetch(&format!("/api/attachments/{}/thumbnail", image.id))
        .await;
    assert_eq!(thumb.status(), StatusCode::OK);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let small = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (320, 240));

    // A page uploaded as a file is served only to be saved.
    let page = b"<html><script>alert(1)</script></html>".to_vec();
    let response = upload(&ana, ops, "x.html", "text/html", page.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Attachment = response.json().await.unwrap();
    assert_eq!(
        (file.content_type.as_str(), file.image),
        ("text/html", None)
    );
    let got = bob.fetch(&format!("/api/attachments/{}", file.id)).await;
    let headers = got.headers().clone();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), page.as_slice());
    let (status, body) = refused(
        bob.fetch(&format!("/api/attachments/{}/thumbnail", file.id))
            .await,
    )
    .await;
    assert_eq!(
        (status, body.code),
        (StatusCode::NOT_FOUND, ErrorCode::NotFound)
    );

    // Not a member of the room: neither the file nor its thumbnail.
    for path in [
        format!("/api/attachments/{}", image.id),
        format!("/api/attachments/{}/thumbnail", image.id),
    ] {
        let (status, body) = refused(cy.fetch(&path).await).await;
        assert_eq!(
            (status, body.code),
            (StatusCode::FORBIDDEN, ErrorCode::NotMember)
        );
    }
    // Kept under their ids only, nothing under a name the uploader chose.
    let mut expected = vec![
        image.id.clone(),
        format!("{}.thumbnail", image.id),
        file.id.clone(),
    ];
    expected.sort();
    assert_eq!(server.attachments_kept(), expected);
}

#[tokio::test]
async fn bad_uploads_are_refused_and_nothing_is_kept() {
    let server = TestServer::start_with(|config| {
        config.attachments.max_size = 64 * 1024;
        config.attachments.quota_per_user = 100 * 1024;
    })
    .await;
    let ana = server.owner().await;
    let cy = server.user("cy").await;
    let ops = ana.create_room("ops").await.room.id;

    // What is sent, as what type, the answer expected, and what its message must say.
    type Case = (
        &'static str,
        &'static str,
        Vec<u8>,
        StatusCode,
        ErrorCode,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "over the size limit",
            "application/octet-stream",
            vec![7; 64 * 1024 + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge,
            "at most 65536 bytes",
        ),
        (
            "an empty file",
            "text/plain",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            ErrorCode::Invalid,
            "empty",
        ),
        (
            "text that says it is a PNG",
            "image/png",
            b"not an image at all".to_vec(),
            StatusCode::BAD_REQUEST,
            ErrorCode::Invalid,
            "not a PNG, JPEG, GIF or WebP",
        ),
        (
            "a PNG bomb within the side limit",
            "image/png",
            bomb(16_000),
            StatusCode::BAD_REQUEST,
            ErrorCode::Invalid,
            "too big to open",
        ),
        (
            "a PNG bomb past it",
            "image/png",
            bomb(100_000),
            StatusCode::BAD_REQUEST,
            ErrorCode::Invalid,
            "too big to open",
        ),
    ];
    for (what, content_type, body, status, code, says) in cases {
        let (got, error) = refused(upload(&ana, ops, "f.bin", content_type, body).await).await;
        assert_eq!(
            (got, error.code),
            (status, code),
            "{what}: {}",
            error.message
        );
        assert!(error.message.contains(says), "{what}: {}", error.message);
    }

    let gzipped = ana
        .request(
            Method::POST,
            &format!("/api/rooms/{ops}/attachments?name=a.zip"),
        )
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 8, 0])
        .send()
        .await
        .unwrap();
    let (status, error) = refused(gzipped).await;
    assert_eq!(
        (status, error.code),
        (StatusCode::BAD_REQUEST, ErrorCode::Invalid)
    );

    let (status, error) = refused(upload(&cy, ops, "f.bin", "text/plain", vec![1; 10]).await).await;
    assert_eq!(
        (status, error.code),
        (StatusCode::FORBIDDEN, ErrorCode::NotMember)
    );
    assert!(
        server.attachments_kept().is_empty(),
        "{:?}",
        server.attachments_kept()
    );

    // The quota: 60 KiB fits, 60 KiB more does not.
    let first = upload(
        &ana,
        ops,
        "a.bin",
        "application/octet-stream",
        vec![1; 60 * 1024],
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let (status, error) = refused(
        upload(
            &ana,
            ops,
            "b.bin",
            "application/octet-stream",
            vec![2; 60 * 1024],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error.code),
        (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge)
    );
    assert!(error.message.contains("quota"), "{}", error.message);
    assert_eq!(server.attachments_kept().len(), 1);
}

async fn uploaded(client: &Client, room: i64, name: &str, kind: &str, body: Vec<u8>) -> Attachment {
    let response = upload(client, room, name, kind, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_message_carries_its_uploads_to_the_room_and_takes_them_when_deleted() {
    let server = TestServer::start().await;
    let ana = server.owner().await;
    let bob = server.user("bob").await;
    let ops = ana.create_room("ops").await.room.id;
    let other = ana.create_room("other").await.room.id;
    bob.join(ops).await;
    bob.join(other).await;
    let mut bobs = bob.chat().await;
    let mut anas = ana.chat().await;

    let photo = uploaded(&ana, ops, "photo.png", "image/png", png(64, 48)).await;
    let notes = uploaded(&ana, ops, "notes.txt", "text/plain", b"agenda".to_vec()).await;
    let elsewhere = uploaded(&ana, other, "x.txt", "text/plain", b"x".to_vec()).await;
    let bobs_own = uploaded(&bob, ops, "b.txt", "text/plain", b"b".to_vec()).await;

    // Files alone, no words: over the chat channel, bob hears them with the message.
    anas.send(&ClientFrame::Send {
        room: ops,
        client_id: "with-files".into(),
        body: String::new(),
        reply_to: None,
        attachments: vec![notes.id.clone(), photo.id.clone()],
    })
    .await;
    let ServerFrame::Ack { id, .. } = anas
        .expect("the ack", |f| matches!(f, ServerFrame::Ack { .. }))
        .await
    else {
        unreachable!()
    };
    let ServerFrame::Message(heard) = bobs
        .expect("the message", |f| matches!(f, ServerFrame::Message(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(heard.id, id);
    assert_eq!(
        heard.attachments,
        [notes.clone(), photo.clone()],
        "in the order sent"
    );
    let page: HistoryPage = bob.get(&format!("/api/rooms/{ops}/messages")).await;
    assert_eq!(page.messages, std::slice::from_ref(&heard));

    // Each refused with a clear error, and nothing stored: ana's upload sent by bob, an upload
    // to another room, one already carried, an unknown id, more than ten.
    let too_many: Vec<String> = (0..11).map(|n| format!("id{n}")).collect();
    for (sender, room, ids) in [
        (&bob, ops, vec![photo.id.clone()]),
        (&ana, ops, vec![elsewhere.id.clone()]),
        (&ana, ops, vec![notes.id.clone()]),
        (&ana, ops, vec!["no-such-upload".to_owned()]),
        (&bob, ops, too_many),
    ] {
        let response = sender
            .request(Method::POST, &format!("/api/rooms/{room}/messages"))
            .json(&SendMessage {
                client_id: None,
                body: "look".into(),
                reply_to: None,
                attachments: ids.clone(),
            })
            .send()
            .await
            .unwrap();
        let (status, body) = refused(response).await;
        assert_eq!(
            (status, body.code),
            (StatusCode::BAD_REQUEST, ErrorCode::Invalid),
            "{ids:?}: {}",
            body.message
        );
    }
    let page: HistoryPage = bob.get(&format!("/api/rooms/{ops}/messages")).await;
    assert_eq!(page.messages.len(), 1, "nothing stored");

    // Deleted: bob hears the message without them, cannot fetch them, and their bytes go.
    let deleted = ana
        .request(Method::DELETE, &format!("/api/messages/{id}"))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let ServerFrame::Changed { message, .. } = bobs
        .expect("the deletion", |f| matches!(f, ServerFrame::Changed { .. }))
        .await
    else {
        unreachable!()
    };
    assert!(message.deleted_at.is_some() && message.attachments.is_empty());
    for path in [
        format!("/api/attachments/{}", photo.id),
        format!("/api/attachments/{}/thumbnail", photo.id),
        format!("/api/attachments/{}", notes.id),
    ] {
        let (status, _) = refused(bob.fetch(&path).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let mut left = vec![elsewhere.id.clone(), bobs_own.id.clone()];
    left.sort();
    server
        .until_attachments_kept(&left, "the deleted message's files")
        .await;
}

#[tokio::test]
async fn an_upload_no_message_carries_is_deleted_after_its_grace() {
    let server = TestServer::start_with(|config| {
        config.attachments.unsent_kept_for = std::time::Duration::ZERO;
    })
    .await;
    let ana = server.owner().await;
    let ops = ana.create_room("ops").await.room.id;
    let notes = uploaded(&ana, ops, "notes.txt", "text/plain", b"agenda".to_vec()).await;
    server
        .until_attachments_kept(&[], "the unsent upload")
        .await;
    let response = ana
        .request(Method::POST, &format!("/api/rooms/{ops}/messages"))
        .json(&SendMessage {
            client_id: None,
            body: "too late".into(),
            reply_to: None,
            attachments: vec![notes.id.clone()],
        })
        .send()
        .await
        .unwrap();
    let (status, body) = refused(response).await;
    assert_eq!(
        (status, body.code),
        (StatusCode::BAD_REQUEST, ErrorCode::Invalid)
    );
    assert!(
        ana.get::<HistoryPage>(&format!("/api/rooms/{ops}/messages"))
            .await
            .messages
            .is_empty()
    );
}

/// A picker that knew no type sends `application/octet-stream`: a real PNG is still shown as an
/// image, and a bomb is kept as a plain file, never opened.
#[tokio::test]
async fn an_image_sent_without_its_type_is_recognised_and_a_bomb_is_not_opened() {
    let server = TestServer::start().await;
    let ana = server.owner().await;
    let ops = ana.create_room("ops").await.room.id;
    let photo = uploaded(
        &ana,
        ops,
        "photo.png",
        "application/octet-stream",
        png(64, 48),
    )
    .await;
    assert_eq!(photo.content_type, "image/png");
    let size = photo.image.expect("recognised as an image");
    assert_eq!((size.width, size.height), (64, 48));
    let thumb = ana
        .fetch(&format!("/api/attachments/{}/thumbnail", photo.id))
        .await;
    assert_eq!(thumb.status(), StatusCode::OK);

    let bomb = uploaded(
        &ana,
        ops,
        "b.png",
        "application/octet-stream",
        bomb(100_000),
    )
    .await;
    assert_eq!(
        (bomb.content_type.as_str(), bomb.image),
        ("application/octet-stream", None)
    );
    let got = ana.fetch(&format!("/api/attachments/{}", bomb.id)).await;
    assert_eq!(got.headers()["content-type"], "application/octet-stream");
    assert!(
        got.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
}

/// `attachments.object_store` keeps the bytes elsewhere than the data dir (here a directory of
/// its own, through a `file://` URL); a store this build cannot reach is refused at start.
#[tokio::test]
async fn the_bytes_go_to_the_configured_object_store() {
    let elsewhere = tempfile::tempdir().unwrap();
    let url = format!("file://{}/files", elsewhere.path().display());
    let server = TestServer::start_with(|config| {
        config.attachments.object_store = Some(url.clone());
    })
    .await;
    let ana = server.owner().await;
    let ops = ana.create_room("ops").await.room.id;
    let body = b"kept elsewhere".to_vec();
    let notes = uploaded(&ana, ops, "notes.txt", "text/plain", body.clone()).await;
    let kept = elsewhere.path().join("files").join(&notes.id);
    assert_eq!(std::fs::read(&kept).unwrap(), body);
    assert!(
        server.attachments_kept().is_empty(),
        "nothing in the data dir"
    );
    let got = ana.fetch(&format!("/api/attachments/{}", notes.id)).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), body.as_slice());

    let dir = tempfile::tempdir().unwrap();
    let mut config = tidings_server::config::Config {
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    for (store, says) in [
        ("s3://bucket/prefix", "attachments.object_store"),
        ("not a url", "attachments.object_store"),
    ] {
        config.attachments.object_store = Some(store.to_owned());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = tidings_server::run(listener, config.clone(), std::future::pending())
            .await
            .expect_err(store);
        assert!(refused.to_string().contains(says), "{store}: {refused}");
    }
}
