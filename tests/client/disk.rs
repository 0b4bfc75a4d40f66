//! The client's own disk fills up: a send is refused with a clear error (the text stays with the
//! user, nothing half-written), the cache stays readable, and sending works again once space is
//! back.

use tidings_client::store::LocalError;
use tidings_client::{Client, ClientError, ClientEvent};
use tidings_tests::{
    PASSWORD, TestClient, TestServer, client_options, fill_up, in_private_mounts, mount_tmpfs,
};

#[tokio::test]
async fn a_full_local_disk_refuses_the_send_and_recovers_when_space_returns() {
    if !in_private_mounts(
        "disk::a_full_local_disk_refuses_the_send_and_recovers_when_space_returns",
    ) {
        return;
    }
    let server = TestServer::start().await;
    let bo = server.user("bo").await;
    let room = bo.create_room("ops").await.room.id;
    drop(server.user("ana").await);
    let ana_http = server.login("ana", PASSWORD).await;
    ana_http.join(room).await;
    tidings_tests::post_message(&bo, room, "b0", "cached before the disk filled").await;

    let base = tempfile::tempdir().unwrap();
    let home = base.path().join("home");
    mount_tmpfs(&home, "2m");
    let notes = std::sync::Arc::new(tidings_client::notify::RecordingNotifier::new());
    let client = Client::open(&home.join("client.db"), client_options(&notes)).unwrap();
    let mut ana = TestClient {
        events: client.events(),
        client,
        notes,
        dir: tempfile::tempdir().unwrap(),
    };
    ana.client
        .login(&server.url(""), "ana", PASSWORD)
        .await
        .unwrap();
    ana.online().await;
    let cached = ana.client.history(room, None, 50).await.unwrap();
    assert_eq!(cached.messages.len(), 1);

    // Fill the disk, then write until SQLite reports it full (its WAL may have room left).
    let filler = fill_up(&home);
    let body = "z".repeat(60_000);
    let mut refused = None;
    for _ in 0..100 {
        match ana.client.send(room, &body).await {
            Ok(_) => continue,
            Err(err) => {
                refused = Some(err);
                break;
            }
        }
    }
    let err = refused.expect("SQLite reported the local disk full");
    assert!(
        matches!(err, ClientError::Local(LocalError::DiskFull)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "local storage: disk full");
    // What is cached stays readable.
    let page = ana.client.cached_history(room, None, 50).await.unwrap();
    assert!(
        page.messages
            .iter()
            .any(|m| m.body == "cached before the disk filled")
    );

    // Space is back: the next send is stored and delivered.
    std::fs::remove_file(filler).unwrap();
    let outgoing = ana
        .client
        .send(room, "after the disk had room again")
        .await
        .unwrap();
    ana.until(
        "the send acked",
        |e| matches!(e, ClientEvent::Sent { client_id, .. } if *client_id == outgoing.client_id),
    )
    .await;
    server.stop().await;
}
