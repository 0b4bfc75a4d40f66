//! Backups while serving: one taken while five clients send holds every message acknowledged
//! before it began, and the attachments; restored into a new data dir, a server serves it all.

use std::sync::{Arc, Mutex};

use tidings_proto::v1::{Attachment, SendMessage};
use tidings_server::ServerError;
use tidings_tests::{OWNER, PASSWORD, TestServer, WAIT, png, post_message};
use tokio_util::sync::CancellationToken;

/// Sent by each sender at most, so the test ends however fast the machine is.
const MOST_EACH: usize = 2000;

/// Waits (bounded) until `acked` holds at least `n` messages.
async fn until_acked(acked: &Mutex<Vec<(i64, String)>>, n: usize) {
    tokio::time::timeout(WAIT, async {
        while acked.lock().unwrap().len() < n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} messages acknowledged in time"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_five_clients_send_restores_every_acknowledged_message() {
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_second = 100_000;
        config.limits.message_burst = 100_000;
    })
    .await;
    let owner = server.owner().await;
    let room = owner.create_room("ops").await.room.id;
    let picture = png(300, 200);
    let image: Attachment = owner
        .request(
            reqwest::Method::POST,
            &format!("/api/rooms/{room}/attachments?name=p.png"),
        )
        .header("content-type", "image/png")
        .body(picture.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let with_image: tidings_proto::v1::Message = owner
        .post(
            &format!("/api/rooms/{room}/messages"),
            &SendMessage {
                client_id: Some("img".into()),
                body: "the picture".into(),
                reply_to: None,
                attachments: vec![image.id.clone()],
            },
        )
        .await;

    let carried = with_image.attachments.clone();
    assert_eq!(carried.len(), 1);
    let acked = Arc::new(Mutex::new(vec![(with_image.id, with_image.body)]));
    let stop = CancellationToken::new();
    let mut senders = tokio::task::JoinSet::new();
    for n in 0..5 {
        let client = server.user(&format!("sender{n}")).await;
        client.join(room).await;
        let (acked, stop) = (Arc::clone(&acked), stop.clone());
        senders.spawn(async move {
            for i in 0..MOST_EACH {
                if stop.is_cancelled() {
                    break;
                }
                let body = format!("sender {n} says {i}");
                let message = post_message(&client, room, &format!("s{n}-{i}"), &body).await;
                acked.lock().unwrap().push((message.id, message.body));
            }
        });
    }
    until_acked(&acked, 100).await;

    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("tidings.tar");
    let before = acked.lock().unwrap().clone();
    let backed_up = tidings_server::backup::create(&server.config, &file)
        .await
        .unwrap();
    // The server went on serving: the senders are acknowledged after the backup too.
    let after = acked.lock().unwrap().len() + 50;
    until_acked(&acked, after).await;
    stop.cancel();
    while let Some(sent) = senders.join_next().await {
        sent.unwrap();
    }
    let sent_in_all = acked.lock().unwrap().clone();
    assert_eq!(backed_up.files, 2, "the image and its thumbnail");
    assert_eq!(backed_up.missing, 0);
    assert_eq!(backed_up.bytes, std::fs::metadata(&file).unwrap().len());

    let new_dir = tempfile::tempdir().unwrap();
    let mut config = server.config.clone();
    config.data_dir = new_dir.path().join("data");
    let restored = tidings_server::backup::restore(&config, &file)
        .await
        .unwrap();
    assert_eq!(restored.files, 2);
    // Never over a data dir in use.
    match tidings_server::backup::restore(&config, &file).await {
        Err(ServerError::Backup(why)) => assert!(why.contains("is not empty"), "{why}"),
        other => panic!("a second restore into the same dir: {other:?}"),
    }
    server.stop().await;

    let server = TestServer::serve_data(new_dir, config).await;
    let owner = server.login(OWNER, PASSWORD).await;
    let history = owner.whole_history(room).await;
    let restored: Vec<(i64, String)> = history.iter().map(|m| (m.id, m.body.clone())).collect();
    for message in &before {
        assert!(
            restored.contains(message),
            "{message:?}, acknowledged before the backup began, is not in the restored history"
        );
    }
    // Nothing is invented.
    for message in &restored {
        assert!(sent_in_all.contains(message), "{message:?} was never sent");
    }
    assert!(restored.len() >= before.len());
    assert_eq!(history[0].attachments, carried);
    let downloaded = owner
        .fetch(&format!("/api/attachments/{}", image.id))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&downloaded[..], &picture[..]);
    let thumbnail = owner
        .fetch(&format!("/api/attachments/{}/thumbnail", image.id))
        .await;
    assert_eq!(thumbnail.status(), reqwest::StatusCode::OK);
}

/// `[backup] every` makes backups while serving, named by time, and deletes all but the newest
/// `keep`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_made_and_the_oldest_deleted() {
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().to_owned();
    let server = TestServer::start_with(|config| {
        config.backup.every = Some(std::time::Duration::from_millis(100));
        config.backup.dir = Some(dir.clone());
        config.backup.keep = 2;
    })
    .await;
    let listing = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".tar"))
            .collect();
        names.sort();
        names
    };
    let mut seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = listing();
        for name in &now {
            assert!(name.starts_with("tidings-"), "{name}");
            if !seen.contains(name) {
                seen.push(name.clone());
            }
        }
        seen.sort();
        if seen.len() >= 3 && !now.contains(&seen[0]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "seen {seen:?}, now {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The newest is a whole backup: it restores.
    let newest = dir.join(listing().last().unwrap());
    let mut config = server.config.clone();
    let restored = tempfile::tempdir().unwrap();
    config.data_dir = restored.path().join("data");
    tidings_server::backup::restore(&config, &newest)
        .await
        .unwrap();
    assert!(config.database_path().exists());
}
