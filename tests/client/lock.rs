//! The session lock: revocation reaches the client within a second; unlocking keeps everything.

use std::time::Instant;

use tidings_client::{ClientError, ClientEvent, ConnectionState, LockCause};
use tidings_tests::{PASSWORD, TestClient, TestServer};

#[tokio::test]
async fn revoking_from_another_login_locks_the_client_within_a_second() {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    let bo = server.user("bo").await;
    let room = bo.create_room("ops").await.room.id;
    ana.client.join_room(room).await.unwrap();
    ana.online().await;
    tidings_tests::post_message(&bo, room, "b1", "history to keep").await;
    ana.until("message", |e| matches!(e, ClientEvent::Message(_)))
        .await;
    ana.client.set_draft(room, "draft to keep").await.unwrap();

    let session = ana.client.account().unwrap().session.unwrap();
    // Ana's phone revokes every other session.
    let phone = server.login("ana", PASSWORD).await;
    let revoked_at = Instant::now();
    let revoked: tidings_proto::v1::Revoked = {
        let response = phone
            .request(reqwest::Method::DELETE, "/api/sessions")
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    };
    assert!(revoked.revoked.contains(&session), "{revoked:?}");
    let ClientEvent::Locked(cause) = ana
        .until("lock", |e| matches!(e, ClientEvent::Locked(_)))
        .await
    else {
        unreachable!()
    };
    let took = revoked_at.elapsed();
    assert!(took.as_millis() < 1000, "locked after {took:?}");
    assert_eq!(cause, LockCause::Revoked);
    assert_eq!(ana.client.state(), ConnectionState::Locked);

    // Locked: nothing goes out with the old token, and sends wait in the outbox.
    assert!(matches!(
        ana.client.sessions().await,
        Err(ClientError::Locked)
    ));
    ana.client.send(room, "written while locked").await.unwrap();
    assert_eq!(ana.client.outbox().await.unwrap().len(), 1);
    let history = ana.client.history(room, None, 50).await.unwrap();
    assert_eq!(
        history.messages.len(),
        1,
        "cached history readable while locked"
    );

    // A wrong password does not unlock.
    assert!(ana.client.unlock("wrong password").await.is_err());
    assert_eq!(ana.client.state(), ConnectionState::Locked);

    ana.client.unlock(PASSWORD).await.unwrap();
    ana.until("unlocked", |e| matches!(e, ClientEvent::Unlocked))
        .await;
    ana.until("outbox drained", |e| matches!(e, ClientEvent::Sent { .. }))
        .await;
    assert!(ana.client.outbox().await.unwrap().is_empty());
    assert_eq!(
        ana.client.draft(room).await.unwrap().as_deref(),
        Some("draft to keep")
    );
    let history = ana.client.history(room, None, 50).await.unwrap();
    let bodies: Vec<&str> = history.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["history to keep", "written while locked"]);
    server.stop().await;
}

#[tokio::test]
async fn lock_now_ends_the_session_on_the_server_too() {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    ana.online().await;
    let old_token = ana.token();
    ana.client.lock_now().await;
    ana.until("lock", |e| {
        matches!(e, ClientEvent::Locked(LockCause::Manual))
    })
    .await;
    let response = tidings_tests::http_client()
        .get(server.url("/api/me"))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the old token is dead");
    ana.client.unlock(PASSWORD).await.unwrap();
    ana.online().await;
    server.stop().await;
}

/// A client of a new user `name`, online with its feed up, whose session is then revoked straight
/// in the server's database: the server tells none of its live connections, and with the status
/// pushes and heartbeats an hour apart nothing else will for the rest of the test.
async fn revoked_behind_the_servers_back(server: &TestServer, name: &str) -> TestClient {
    let mut client = TestClient::new(server, name).await;
    let (mut online, mut feed_up) = (false, false);
    while !(online && feed_up) {
        match client
            .until("online and the feed's opening status", |e| {
                matches!(
                    e,
                    ClientEvent::State(ConnectionState::Online { .. }) | ClientEvent::Session(_)
                )
            })
            .await
        {
            ClientEvent::Session(_) => feed_up = true,
            _ => online = true,
        }
    }
    let account = client.client.account().unwrap();
    let store = tidings_store::Store::open(
        &server.config.database_path(),
        tidings_store::StoreOptions::default(),
    )
    .unwrap();
    assert!(
        store
            .revoke_session(account.user.id, account.session.unwrap(), 1)
            .await
            .unwrap()
    );
    store.close().await;
    assert!(
        matches!(client.client.state(), ConnectionState::Online { .. }),
        "{name}"
    );
    client
}

/// A server whose status pushes and heartbeats are an hour apart.
async fn quiet_server() -> TestServer {
    TestServer::start_with(|config| {
        config.session.feed_interval = std::time::Duration::from_secs(3600);
        config.chat.heartbeat = std::time::Duration::from_secs(3600);
    })
    .await
}

/// One call of the client that reaches the server's HTTP API.
type Call = for<'a> fn(
    &'a tidings_client::Client,
    i64,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), ClientError>> + Send + 'a>,
>;

#[tokio::test]
async fn a_401_from_any_call_locks_the_client() {
    // Nothing on the server's side tells the live connections that the session ended (no status
    // pushes, no heartbeat checks within the test, a revocation the hub never hears of): only
    // the 401 answering the call itself can lock the client.
    let server = quiet_server().await;
    let owner = server.owner().await;
    let room = owner.create_room("ops").await.room.id;
    let calls: [(&str, Call); 6] = [
        ("create_room", |c, _| {
            Box::pin(async move { c.create_room("new").await.map(drop) })
        }),
        ("open_dm", |c, _| {
            Box::pin(async move { c.open_dm(tidings_tests::OWNER).await.map(drop) })
        }),
        ("join_room", |c, room| {
            Box::pin(async move { c.join_room(room).await.map(drop) })
        }),
        ("directory", |c, _| {
            Box::pin(async move { c.directory().await.map(drop) })
        }),
        ("users", |c, _| {
            Box::pin(async move { c.users().await.map(drop) })
        }),
        ("invite", |c, _| {
            Box::pin(async move { c.invite().await.map(drop) })
        }),
    ];
    for (i, (name, call)) in calls.into_iter().enumerate() {
        let mut ana = revoked_behind_the_servers_back(&server, &format!("ana{i}")).await;
        let result = call(&ana.client, room).await;
        assert!(
            matches!(result, Err(ClientError::Locked)),
            "{name}: {result:?}"
        );
        assert_eq!(ana.client.state(), ConnectionState::Locked, "{name}");
        ana.until("lock", |e| {
            matches!(e, ClientEvent::Locked(LockCause::Rejected))
        })
        .await;
        ana.client.shutdown();
    }
    server.stop().await;
}

#[tokio::test]
async fn a_401_met_by_the_chat_channel_itself_locks_the_client() {
    let server = quiet_server().await;
    let mut ana = revoked_behind_the_servers_back(&server, "ana").await;
    // Bo opens a DM with Ana and writes: the message reaches her live chat connection, which
    // learns of the new room by reloading the room list — and meets the 401 there.
    let bo = server.user("bo").await;
    let dm = bo.dm("ana").await.room.id;
    tidings_tests::post_message(&bo, dm, "b1", "hello?").await;
    ana.until("lock", |e| {
        matches!(e, ClientEvent::Locked(LockCause::Rejected))
    })
    .await;
    assert_eq!(ana.client.state(), ConnectionState::Locked);
    server.stop().await;
}
