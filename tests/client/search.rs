//! Search through the client core: the server's answer while online, the cached messages when
//! the server is gone — the user's rooms only, deletions respected, the words marked.

use tidings_client::{ClientEvent, ConnectionState};
use tidings_proto::v1::ErrorCode;
use tidings_tests::{TestClient, TestServer, marked};

#[tokio::test]
async fn searches_the_server_online_and_the_cache_offline() {
    let server = TestServer::start().await;
    let ana = TestClient::new(&server, "ana").await;
    let mut bob = TestClient::new(&server, "bob").await;
    let plans = ana.client.create_room("plans").await.unwrap().room.id;
    let secret = ana.client.create_room("secret").await.unwrap().room.id;
    bob.client.join_room(plans).await.unwrap();
    ana.client
        .send(secret, "deploy the secret thing")
        .await
        .unwrap();
    for body in ["Deploy on Friday", "lunch?", "deploy notes are in the doc"] {
        ana.client.send(plans, body).await.unwrap();
    }
    let notes = bob
        .until(
            "the last message",
            |e| matches!(e, ClientEvent::Message(m) if m.body == "deploy notes are in the doc"),
        )
        .await;
    let ClientEvent::Message(notes) = notes else {
        unreachable!()
    };

    let online = bob.client.search("deploy", None, None).await.unwrap();
    assert!(!online.cached);
    assert_eq!(
        marked(&online),
        ["[deploy] notes are in the doc", "[Deploy] on Friday"]
    );

    ana.client.delete_message(notes.id).await.unwrap();
    bob.until(
        "the deletion",
        |e| matches!(e, ClientEvent::Changed(m) if m.id == notes.id && m.deleted_at.is_some()),
    )
    .await;

    // The server goes away: the cache answers, and says so.
    server.stop().await;
    bob.until("offline", |e| {
        matches!(e, ClientEvent::State(ConnectionState::Offline { .. }))
    })
    .await;
    let offline = bob.client.search("DEPLOY", None, None).await.unwrap();
    assert!(offline.cached);
    assert_eq!(
        marked(&offline),
        ["[Deploy] on Friday"],
        "the cache's copy: bob's rooms only, the deleted message gone"
    );
    let in_room = bob.client.search("lunch", Some(plans), None).await.unwrap();
    assert_eq!(marked(&in_room), ["[lunch]?"]);
    let nothing = bob
        .client
        .search("lunch", Some(secret), None)
        .await
        .unwrap();
    assert!(nothing.hits.is_empty());

    // What cannot be searched is refused without asking anyone, as the server would.
    let refused = bob.client.search("de*", None, None).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Invalid), "{refused}");
}
