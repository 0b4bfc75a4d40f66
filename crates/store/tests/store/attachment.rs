//! Attachments: recorded for members of the room only, within the uploader's quota.

use crate::on_both;

use tidings_store::{
    Change, Inserted, Message, MessageChange, NewAttachment, NewMessage, Replayed, Store,
    StoreError,
};

fn new(id: &str, room: i64, uploader: i64, size: u64) -> NewAttachment {
    NewAttachment {
        id: id.to_owned(),
        room_id: room,
        uploader_id: uploader,
        name: format!("{id}.png"),
        content_type: "image/png".to_owned(),
        size,
        image: Some((640, 480)),
        now: 7,
        quota: 1000,
    }
}

on_both!(
    attachments_are_members_only_and_within_the_quota,
    a_message_carries_its_authors_uploads_once_and_loses_them_when_deleted,
);

async fn attachments_are_members_only_and_within_the_quota(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let room = super::room(&store, "ops", &ana).await;

    let first = store
        .add_attachment(new("a1", room.id, ana.id, 600))
        .await
        .unwrap();
    assert_eq!(store.attachment("a1").await.unwrap(), Some(first.clone()));
    assert_eq!(
        (first.size, first.image, first.message_id),
        (600, Some((640, 480)), None)
    );
    let text = NewAttachment {
        image: None,
        content_type: "text/plain".to_owned(),
        ..new("a2", room.id, ana.id, 400)
    };
    assert_eq!(store.add_attachment(text).await.unwrap().image, None);
    assert_eq!(store.attachment_usage(ana.id).await.unwrap(), 1000);

    // One byte over the quota, a room not hers, a room that does not exist: nothing recorded.
    match store.add_attachment(new("a3", room.id, ana.id, 1)).await {
        Err(StoreError::QuotaExceeded { used, quota }) => assert_eq!((used, quota), (1000, 1000)),
        other => panic!("expected the quota, got {other:?}"),
    }
    assert!(matches!(
        store.add_attachment(new("b1", room.id, bob.id, 1)).await,
        Err(StoreError::NotAllowed)
    ));
    assert!(matches!(
        store.add_attachment(new("b2", 9999, bob.id, 1)).await,
        Err(StoreError::NotFound)
    ));
    for id in ["a3", "b1", "b2"] {
        assert_eq!(store.attachment(id).await.unwrap(), None);
    }
    assert_eq!(store.attachment_usage(bob.id).await.unwrap(), 0);
}

fn carrying(room: i64, author: i64, client_id: &str, ids: &[&str]) -> NewMessage {
    NewMessage {
        room_id: room,
        author_id: author,
        client_id: Some(client_id.to_owned()),
        body: String::new(),
        sent_at: 9,
        reply_to: None,
        attachments: ids.iter().map(|id| (*id).to_owned()).collect(),
    }
}

fn ids(message: &Message) -> Vec<&str> {
    message.attachments.iter().map(|a| a.id.as_str()).collect()
}

async fn a_message_carries_its_authors_uploads_once_and_loses_them_when_deleted(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let room = super::room(&store, "ops", &ana).await;
    let other = super::room(&store, "other", &ana).await;
    store.join_room(room.id, bob.id, 1).await.unwrap();
    for (id, now) in [("p1", 7), ("p2", 8), ("p3", 8)] {
        store
            .add_attachment(NewAttachment {
                now,
                ..new(id, room.id, ana.id, 10)
            })
            .await
            .unwrap();
    }
    // Uploaded later: kept by every sweep below.
    for (id, room, user) in [("b1", room.id, bob.id), ("o1", other.id, ana.id)] {
        store
            .add_attachment(NewAttachment {
                now: 50,
                ..new(id, room, user, 10)
            })
            .await
            .unwrap();
    }

    // Refused whole, nothing claimed: bob's upload, an upload to another room, an unknown id.
    for (client_id, wanted) in [
        ("c1", ["p1", "b1"]),
        ("c2", ["p1", "o1"]),
        ("c3", ["p1", "zz"]),
    ] {
        assert!(
            matches!(
                store
                    .insert_message(carrying(room.id, ana.id, client_id, &wanted))
                    .await,
                Err(StoreError::AttachmentUnavailable)
            ),
            "{wanted:?}"
        );
    }
    assert!(store.history(room.id, None, 10).await.unwrap().is_empty());
    assert_eq!(
        store.attachment("p1").await.unwrap().unwrap().message_id,
        None
    );

    let Inserted::New(sent) = store
        .insert_message(carrying(room.id, ana.id, "c4", &["p3", "p1", "p3"]))
        .await
        .unwrap()
    else {
        panic!("a new message")
    };
    assert_eq!(ids(&sent), ["p3", "p1"], "in the order asked, each once");
    assert!(
        sent.attachments
            .iter()
            .all(|a| a.message_id == Some(sent.id))
    );
    assert_eq!(sent.attachments[1], {
        let mut stored = store.attachment("p1").await.unwrap().unwrap();
        assert_eq!(stored.message_id, Some(sent.id));
        stored.message_id = Some(sent.id);
        stored
    });
    // Read back the same way everywhere: history, a replay, a resend's duplicate.
    assert_eq!(
        store.history(room.id, None, 10).await.unwrap(),
        std::slice::from_ref(&sent)
    );
    let replayed = store.messages_since(bob.id, 0, 10).await.unwrap();
    assert_eq!(replayed, [Replayed::Message(sent.clone())]);
    let Inserted::Duplicate(again) = store
        .insert_message(carrying(room.id, ana.id, "c4", &["p3", "p1"]))
        .await
        .unwrap()
    else {
        panic!("a duplicate")
    };
    assert_eq!(again, sent);

    // Carried once: another message cannot take p1 again.
    assert!(matches!(
        store
            .insert_message(carrying(room.id, ana.id, "c5", &["p1", "p2"]))
            .await,
        Err(StoreError::AttachmentUnavailable)
    ));
    assert_eq!(
        store.attachment("p2").await.unwrap().unwrap().message_id,
        None
    );

    // Nothing to forget yet: p2 is unsent but newer than the cut-off.
    assert!(store.forget_attachments(8, 10).await.unwrap().is_empty());

    // Deleted: the message carries nothing, its files are no one's to read, then forgotten
    // (with p2, now older than the cut-off); bob's and the other room's stay.
    store
        .change_message(MessageChange {
            message_id: sent.id,
            user_id: ana.id,
            change: Change::Delete,
            may_delete_any: false,
            at: 20,
        })
        .await
        .unwrap();
    let deleted = store.history(room.id, None, 10).await.unwrap();
    assert!(deleted[0].attachments.is_empty());
    assert_eq!(store.attachment("p1").await.unwrap(), None);
    let mut forgotten = store.forget_attachments(9, 10).await.unwrap();
    forgotten.sort();
    assert_eq!(forgotten, ["p1", "p2", "p3"]);
    assert!(store.forget_attachments(9, 10).await.unwrap().is_empty());
    assert_eq!(
        store.attachment_usage(ana.id).await.unwrap(),
        10,
        "o1 is left"
    );
    assert!(store.attachment("b1").await.unwrap().is_some());
}
