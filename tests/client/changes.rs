//! Edits, deletions and reactions through the client core and the real server: each reaches the
//! other member live, and one who was away converges when they come back — over the WebSocket,
//! and over long-polling.

use tidings_client::ClientEvent;
use tidings_client::notify::NotifyLevel;
use tidings_client::store::Draft;
use tidings_proto::v1::{ErrorCode, Message, TransportKind};
use tidings_tests::{TestClient, TestServer};

/// The message `body` as a member's client heard of it.
async fn heard(client: &mut TestClient, body: &str) -> Message {
    let event = client
        .until(
            body,
            |e| matches!(e, ClientEvent::Message(m) if m.body == body),
        )
        .await;
    let ClientEvent::Message(message) = event else {
        unreachable!()
    };
    message
}

async fn a_member_away_converges_on_every_change(transport: Option<TransportKind>) {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    let mut bob = TestClient::over(&server, "bob", transport).await;
    let room = ana.client.create_room("plans").await.unwrap().room.id;
    bob.client.join_room(room).await.unwrap();
    ana.client.send(room, "lunch at 12, @bob?").await.unwrap();
    ana.client.send(room, "or at 1").await.unwrap();
    let lunch = heard(&mut bob, "lunch at 12, @bob?").await;
    let later = heard(&mut bob, "or at 1").await;

    // Live: an edit reaches the other member as the message as it now is, and so does a reaction.
    let edited = ana
        .client
        .edit_message(lunch.id, "lunch at 12:30, @bob?")
        .await
        .unwrap();
    assert!(edited.edited_at.is_some());
    assert_eq!(edited.sent_at, lunch.sent_at, "an edit keeps the time sent");
    bob.until("the edit", |e| {
        matches!(e, ClientEvent::Changed(m) if m.id == lunch.id && m.body == "lunch at 12:30, @bob?")
    })
    .await;
    let reacted = bob.client.react(lunch.id, "👍", true).await.unwrap();
    assert_eq!(reacted.reactions.len(), 1);
    ana.until(
        "bob's reaction",
        |e| matches!(e, ClientEvent::Changed(m) if m.id == lunch.id && m.reactions.len() == 1),
    )
    .await;

    // Bad requests are refused with a clear error, and change nothing.
    let refused = bob
        .client
        .edit_message(lunch.id, "mine now")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden), "{refused}");
    let refused = bob.client.delete_message(lunch.id).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden), "{refused}");
    let refused = bob
        .client
        .react(lunch.id, "not an emoji", true)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Invalid), "{refused}");
    let refused = ana.client.edit_message(lunch.id, "  ").await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Invalid), "{refused}");

    // Away: bob's app is closed while ana edits, reacts and deletes.
    bob.client.shutdown();
    ana.client
        .edit_message(later.id, "or at 1:30")
        .await
        .unwrap();
    ana.client.react(later.id, "🎉", true).await.unwrap();
    ana.client.react(lunch.id, "👀", true).await.unwrap();
    let deleted = ana.client.delete_message(lunch.id).await.unwrap();
    assert_eq!(deleted.body, "");
    assert!(deleted.deleted_at.is_some() && deleted.reactions.is_empty());

    // Back: the sync brings every change, in order, and the cache holds each message as it is.
    let mut bob = bob.reopen_over(transport);
    bob.until(
        "the deletion",
        |e| matches!(e, ClientEvent::Changed(m) if m.id == lunch.id && m.deleted_at.is_some()),
    )
    .await;
    let cached = tidings_client::store::LocalStore::open(&bob.dir.path().join("client.db"))
        .unwrap()
        .history(room, None, 50)
        .unwrap();
    let server_page = server
        .login("bob", tidings_tests::PASSWORD)
        .await
        .get::<tidings_proto::v1::HistoryPage>(&format!("/api/rooms/{room}/messages"))
        .await;
    assert_eq!(
        cached, server_page.messages,
        "the cache is what the server holds"
    );
    assert_eq!(cached.len(), 2);
    assert_eq!(
        cached[0].body, "",
        "the deleted body is gone from the cache"
    );
    assert!(cached[0].deleted_at.is_some() && cached[0].mentions.is_empty());
    assert_eq!(cached[1].body, "or at 1:30");
    assert!(cached[1].edited_at.is_some());
    assert_eq!(cached[1].reactions[0].emoji, "🎉");
    assert_eq!(
        cached[1].reactions[0].users,
        [ana.client.account().unwrap().user.id]
    );
}

/// A message deleted while its notification is up takes the notification with it, on the
/// WebSocket (through the feed's `retract`) and on an HTTP rung (through the chat's `changed`).
async fn a_deleted_message_withdraws_its_notification(transport: Option<TransportKind>) {
    let server = TestServer::start().await;
    let ana = TestClient::new(&server, "ana").await;
    let mut bob = TestClient::over(&server, "bob", transport).await;
    let room = ana.client.create_room("ops").await.unwrap().room.id;
    bob.client.join_room(room).await.unwrap();
    bob.online().await;
    ana.client
        .send(room, "the password is hunter2")
        .await
        .unwrap();
    let event = bob
        .until("the notification", |e| {
            matches!(e, ClientEvent::Notified(_))
        })
        .await;
    let ClientEvent::Notified(shown) = event else {
        unreachable!()
    };
    ana.client.delete_message(shown.message_id).await.unwrap();
    bob.until(
        "the withdrawal",
        |e| matches!(e, ClientEvent::Withdrawn { key } if *key == shown.key),
    )
    .await;
    assert_eq!(bob.notes.withdrawn(), [shown.key]);
}

/// A reply quotes what it answers (as that message now is, on every member's cache), counts
/// like a mention for its author's notifications, and is refused across rooms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_quotes_its_message_and_notifies_its_author_like_a_mention() {
    let server = TestServer::start().await;
    let mut ana = TestClient::new(&server, "ana").await;
    let mut bob = TestClient::new(&server, "bob").await;
    let room = ana.client.create_room("plans").await.unwrap().room.id;
    let elsewhere = ana.client.create_room("other").await.unwrap().room.id;
    bob.client.join_room(room).await.unwrap();
    bob.client.join_room(elsewhere).await.unwrap();
    // The names `@` completes from: the room's members, not everyone on the server.
    drop(server.user("cy").await);
    let names: Vec<String> = bob
        .client
        .members(room)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ana", "bob"]);
    // Ana hears only of mentions here: a reply to her must count as one.
    ana.client
        .set_room_notify_level(room, Some(NotifyLevel::Mentions))
        .await
        .unwrap();
    ana.online().await;
    let question = ana.client.send(room, "lunch?").await.unwrap();
    let asked = heard(&mut bob, "lunch?").await;
    bob.client.send(room, "unrelated").await.unwrap();
    let answer = bob
        .client
        .send_message(Draft {
            reply_to: Some(asked.id),
            ..Draft::text(room, "yes, at 1")
        })
        .await
        .unwrap();
    assert_eq!(answer.reply_to, Some(asked.id));
    // The reply and its notification come by two ways (chat and feed), in either order.
    let (mut replied, mut note) = (None, None);
    ana.until("the reply and its notification", |e| {
        match e {
            ClientEvent::Message(m) if m.body == "yes, at 1" => replied = Some(m.clone()),
            ClientEvent::Notified(n) => note = Some(n.clone()),
            _ => {}
        }
        replied.is_some() && note.is_some()
    })
    .await;
    let (replied, note) = (replied.unwrap(), note.unwrap());
    let quote = replied
        .reply_to
        .clone()
        .expect("the reply quotes the question");
    assert_eq!(
        (
            quote.id,
            quote.author.name.as_str(),
            quote.preview.as_str(),
            quote.deleted
        ),
        (asked.id, "ana", "lunch?", false)
    );
    let me = ana.client.account().unwrap().user.id;
    assert!(replied.mentions.contains(&me));
    assert_eq!(
        note.message_id, replied.id,
        "the reply notifies like a mention; the plain message before it did not"
    );
    assert_eq!(question.body, "lunch?");

    // An edit of the question shows in the quote of every cached reply.
    ana.client
        .edit_message(asked.id, "lunch at 12?")
        .await
        .unwrap();
    bob.until(
        "the edit",
        |e| matches!(e, ClientEvent::Changed(m) if m.id == asked.id),
    )
    .await;
    let cached = tidings_client::store::LocalStore::open(&bob.dir.path().join("client.db"))
        .unwrap()
        .history(room, None, 50)
        .unwrap();
    let reply = cached.iter().find(|m| m.body == "yes, at 1").unwrap();
    assert_eq!(
        reply.reply_to.as_ref().map(|q| q.preview.as_str()),
        Some("lunch at 12?")
    );

    // A reply to a message of another room is refused for good, with a clear error.
    let stray = bob
        .client
        .send_message(Draft {
            reply_to: Some(asked.id),
            ..Draft::text(elsewhere, "wrong room")
        })
        .await
        .unwrap();
    let event = bob
        .until("the refusal", |e| {
            matches!(e, ClientEvent::SendFailed { client_id, .. } if *client_id == stray.client_id)
        })
        .await;
    let ClientEvent::SendFailed { error, .. } = event else {
        unreachable!()
    };
    assert_eq!(error.code, ErrorCode::Invalid, "{}", error.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_withdraws_its_notification_over_the_websocket() {
    a_deleted_message_withdraws_its_notification(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_withdraws_its_notification_over_long_polling() {
    a_deleted_message_withdraws_its_notification(Some(TransportKind::LongPolling)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_away_converges_on_every_change_over_the_websocket() {
    a_member_away_converges_on_every_change(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_away_converges_on_every_change_over_long_polling() {
    a_member_away_converges_on_every_change(Some(TransportKind::LongPolling)).await;
}
