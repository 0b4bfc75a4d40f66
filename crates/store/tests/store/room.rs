use crate::on_both;

use tidings_store::{NewMessage, RoomKind, Store, StoreError, User};

async fn say(store: &Store, room: i64, author: &User, body: &str) -> i64 {
    let msg = NewMessage {
        room_id: room,
        author_id: author.id,
        client_id: None,
        body: body.to_owned(),
        sent_at: 2_000,
        reply_to: None,
        attachments: Vec::new(),
    };
    match store.insert_message(msg).await.unwrap() {
        tidings_store::Inserted::New(m) => m.id,
        other => panic!("expected a new message, got {other:?}"),
    }
}

async fn group_rooms_are_created_joined_and_left(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;

    let general = store.create_room("general", ana.id, 5).await.unwrap();
    assert_eq!(general.kind, RoomKind::Group);
    assert_eq!(general.name.as_deref(), Some("general"));
    assert_eq!(store.room(general.id).await.unwrap(), Some(general.clone()));
    assert!(store.is_member(general.id, ana.id).await.unwrap());
    assert!(matches!(
        store.create_room("GENERAL", bob.id, 6).await,
        Err(StoreError::NameTaken)
    ));
    let attic = store.create_room("attic", bob.id, 7).await.unwrap();
    assert_eq!(
        store.group_rooms().await.unwrap(),
        vec![attic.clone(), general.clone()]
    );

    assert!(store.join_room(general.id, bob.id, 8).await.unwrap());
    assert!(!store.join_room(general.id, bob.id, 9).await.unwrap());
    assert_eq!(
        store.members(general.id).await.unwrap(),
        vec![ana.clone(), bob.clone()]
    );
    assert_eq!(
        store.memberships().await.unwrap(),
        vec![
            (general.id, ana.id),
            (general.id, bob.id),
            (attic.id, bob.id)
        ]
    );

    assert!(store.leave_room(general.id, bob.id).await.unwrap());
    assert!(!store.leave_room(general.id, bob.id).await.unwrap());
    assert!(!store.is_member(general.id, bob.id).await.unwrap());
    assert_eq!(store.members(general.id).await.unwrap(), vec![ana]);

    assert!(matches!(
        store.join_room(999, bob.id, 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.leave_room(999, bob.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.room(999).await.unwrap(), None);
}

async fn a_dm_is_opened_once_and_cannot_be_joined_or_left(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let eve = super::user(&store, "eve").await;

    let (dm, created) = store.open_dm(bob.id, ana.id, 10).await.unwrap();
    assert!(created);
    assert_eq!(dm.kind, RoomKind::Dm);
    assert_eq!(dm.name, None);
    let (again, created) = store.open_dm(ana.id, bob.id, 20).await.unwrap();
    assert!(!created);
    assert_eq!(again, dm);
    assert_eq!(
        store.members(dm.id).await.unwrap(),
        vec![ana.clone(), bob.clone()]
    );
    // DMs are not in the directory.
    assert!(store.group_rooms().await.unwrap().is_empty());

    assert!(matches!(
        store.join_room(dm.id, eve.id, 30).await,
        Err(StoreError::NotAllowed)
    ));
    assert!(matches!(
        store.leave_room(dm.id, ana.id).await,
        Err(StoreError::NotAllowed)
    ));
    assert!(matches!(
        store.open_dm(ana.id, ana.id, 30).await,
        Err(StoreError::NotAllowed)
    ));
    assert!(matches!(
        store.open_dm(ana.id, 999, 30).await,
        Err(StoreError::NotFound)
    ));

    let summary = store.room_summary(dm.id, ana.id).await.unwrap().unwrap();
    assert_eq!(summary.room, dm);
    assert_eq!(summary.dm_peer, Some(bob.clone()));
    let bobs = store.rooms_of(bob.id).await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].dm_peer, Some(ana));
    assert_eq!(store.room_summary(dm.id, eve.id).await.unwrap(), None);
}

async fn unread_counts_and_mentions_follow_the_read_marker(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let general = super::room(&store, "general", &ana).await;
    let other = super::room(&store, "other", &ana).await;
    store.join_room(general.id, bob.id, 1).await.unwrap();
    store.join_room(other.id, bob.id, 1).await.unwrap();

    let empty = store
        .room_summary(general.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            empty.last_read_id,
            empty.latest_id,
            empty.unread,
            empty.unread_mentions
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(empty.dm_peer, None);

    let m1 = say(&store, general.id, &ana, "hello").await;
    let m2 = say(&store, general.id, &ana, "hey @bob").await;
    let _elsewhere = say(&store, other.id, &ana, "@bob elsewhere").await;
    let m3 = say(&store, general.id, &bob, "hi @ana, @bob here").await;
    let m4 = say(&store, general.id, &ana, "@BOB again").await;

    let s = store
        .room_summary(general.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.latest_id, m4);
    assert_eq!(s.last_read_id, 0);
    // Bob's own message counts neither as unread nor as a mention.
    assert_eq!((s.unread, s.unread_mentions), (3, 2));
    let s = store
        .room_summary(general.id, ana.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.unread, s.unread_mentions), (1, 1));

    assert_eq!(
        store.set_read_marker(general.id, bob.id, m2).await.unwrap(),
        m2
    );
    let s = store
        .room_summary(general.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.last_read_id, s.unread, s.unread_mentions), (m2, 1, 1));

    // The marker never moves back, and never past the room's newest message.
    assert_eq!(
        store.set_read_marker(general.id, bob.id, m1).await.unwrap(),
        m2
    );
    assert_eq!(
        store
            .set_read_marker(general.id, bob.id, m4 + 100)
            .await
            .unwrap(),
        m4
    );
    assert_eq!(
        store.set_read_marker(general.id, bob.id, m3).await.unwrap(),
        m4
    );
    let s = store
        .room_summary(general.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.last_read_id, s.unread, s.unread_mentions), (m4, 0, 0));

    let rooms = store.rooms_of(bob.id).await.unwrap();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0].room, general);
    assert_eq!((rooms[0].unread, rooms[0].unread_mentions), (0, 0));
    assert_eq!(rooms[1].room, other);
    assert_eq!((rooms[1].unread, rooms[1].unread_mentions), (1, 1));

    let eve = super::user(&store, "eve").await;
    assert!(matches!(
        store.set_read_marker(general.id, eve.id, m1).await,
        Err(StoreError::NotFound)
    ));
}

/// Every change to who hears what is an entry of the log, in commit order among the messages:
/// what a node applies to its fan-out.
async fn the_log_holds_joins_leaves_read_markers_and_revocations_in_order(store: Store) {
    let mut followed = crate::Followed::start(&store);
    let ana = crate::user(&store, "ana").await;
    let bob = crate::user(&store, "bob").await;
    let room = crate::room(&store, "general", &ana).await;
    store.join_room(room.id, bob.id, 1).await.unwrap();
    let said = say(&store, room.id, &ana, "hello").await;
    store.set_read_marker(room.id, bob.id, said).await.unwrap();
    store.leave_room(room.id, bob.id).await.unwrap();
    let (dm, created) = store.open_dm(ana.id, bob.id, 1).await.unwrap();
    assert!(created);
    // Opened again: nothing changes, nothing is logged.
    store.open_dm(bob.id, ana.id, 1).await.unwrap();
    let one = store
        .create_session(bob.id, [1; 32], "a", 1, i64::MAX)
        .await
        .unwrap();
    let two = store
        .create_session(bob.id, [2; 32], "b", 1, i64::MAX)
        .await
        .unwrap();
    let three = store
        .create_session(bob.id, [3; 32], "c", 1, i64::MAX)
        .await
        .unwrap();
    assert!(store.revoke_session(bob.id, one.id, 2).await.unwrap());
    // Revoked already: not again.
    assert!(!store.revoke_session(bob.id, one.id, 3).await.unwrap());
    store
        .revoke_other_sessions(bob.id, three.id, 4)
        .await
        .unwrap();

    let (r, d, a, b) = (room.id, dm.id, ana.id, bob.id);
    let expected = [
        format!("Joined {{ room: {r}, user: {a} }}"),
        format!("Joined {{ room: {r}, user: {b} }}"),
        format!("message {said}"),
        format!("ReadMarker {{ room: {r}, user: {b}, message_id: {said} }}"),
        format!("Left {{ room: {r}, user: {b} }}"),
        format!("Joined {{ room: {d}, user: {a} }}"),
        format!("Joined {{ room: {d}, user: {b} }}"),
        format!("SessionEnded {{ user: {b}, session: {} }}", one.id),
        format!("SessionEnded {{ user: {b}, session: {} }}", two.id),
    ];
    assert_eq!(followed.entries(expected.len()).await, expected);
}

/// A room for everyone: all users when it is made, and each user made later (by the host or
/// with an invite) as their account is, each join in the log. No one leaves it.
async fn a_room_for_everyone_holds_every_member(store: Store) {
    let mut followed = crate::Followed::start(&store);
    let ana = crate::user(&store, "ana").await;
    let bob = crate::user(&store, "bob").await;
    let general = store
        .create_everyone_room("general", ana.id, 1_000)
        .await
        .unwrap();
    let other = crate::room(&store, "other", &ana).await;
    let cy = crate::user(&store, "cy").await;
    store
        .create_invite(crate::invite([7; 32], Some(ana.id), 1_000, None))
        .await
        .unwrap();
    let dee = store
        .register_with_invite([7; 32], "dee", "hash", 1_001)
        .await
        .unwrap();

    let mut members: Vec<i64> = store
        .members(general.id)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    members.sort_unstable();
    assert_eq!(members, [ana.id, bob.id, cy.id, dee.id]);
    assert_eq!(
        store.members(other.id).await.unwrap().len(),
        1,
        "only the room for everyone"
    );
    assert!(matches!(
        store.leave_room(general.id, bob.id).await,
        Err(StoreError::NotAllowed)
    ));
    assert!(store.is_member(general.id, bob.id).await.unwrap());
    // A name is still a name: a room for everyone cannot take one that is in use.
    assert!(matches!(
        store.create_everyone_room("other", ana.id, 1_000).await,
        Err(StoreError::NameTaken)
    ));

    let (g, o) = (general.id, other.id);
    let expected = [
        format!("Joined {{ room: {g}, user: {} }}", ana.id),
        format!("Joined {{ room: {g}, user: {} }}", bob.id),
        format!("Joined {{ room: {o}, user: {} }}", ana.id),
        format!("Joined {{ room: {g}, user: {} }}", cy.id),
        format!("Joined {{ room: {g}, user: {} }}", dee.id),
    ];
    assert_eq!(followed.entries(expected.len()).await, expected);
}

on_both!(
    the_log_holds_joins_leaves_read_markers_and_revocations_in_order,
    group_rooms_are_created_joined_and_left,
    a_dm_is_opened_once_and_cannot_be_joined_or_left,
    unread_counts_and_mentions_follow_the_read_marker,
    a_room_for_everyone_holds_every_member
);
