//! Attachments: recorded for members of the room only, within the uploader's quota.

use crate::on_both;

use tidings_store::{NewAttachment, Store, StoreError};

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

on_both!(attachments_are_members_only_and_within_the_quota);

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
