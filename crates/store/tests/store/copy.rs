//! A SQLite database copied into PostgreSQL reads the same, and goes on from where it was.

use tidings_engines::Postgres;
use tidings_store::{
    Change, Changed, Copied, Inserted, MemberAction, MessageChange, NewAttachment, NewMessage,
    Store, StoreError, StoreOptions, copy_sqlite_to_postgres,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_group_copied_into_postgres_reads_the_same_and_goes_on() {
    let (dir, old) = crate::sqlite();
    let ana = crate::user(&old, "ana").await;
    let bob = crate::user(&old, "Bob").await;
    // The room for everyone: bob is in it already, and whoever joins later will be.
    let general = old
        .create_everyone_room("general", ana.id, 2)
        .await
        .unwrap();
    let (dm, _) = old.open_dm(ana.id, bob.id, 3).await.unwrap();
    // Two uploads a message carries, in the order its author put them, and one never sent.
    for id in ["a1", "a2", "u1"] {
        old.add_attachment(NewAttachment {
            id: id.to_owned(),
            room_id: general.id,
            uploader_id: ana.id,
            name: format!("{id}.png"),
            content_type: "image/png".to_owned(),
            size: 100,
            image: Some((4, 3)),
            now: 4,
            quota: 1_000_000,
        })
        .await
        .unwrap();
    }
    old.insert_message(NewMessage {
        room_id: general.id,
        author_id: ana.id,
        client_id: Some("with files".into()),
        body: "two files".into(),
        sent_at: 5,
        reply_to: None,
        attachments: vec!["a2".into(), "a1".into()],
    })
    .await
    .unwrap();
    let mut last = 0;
    for i in 0..2500 {
        let room = if i % 10 == 0 { dm.id } else { general.id };
        let inserted = old
            .insert_message(NewMessage {
                room_id: room,
                author_id: if i % 2 == 0 { ana.id } else { bob.id },
                client_id: Some(format!("c{i}")),
                body: format!("message {i} for @bob"),
                sent_at: 10 + i,
                reply_to: None,
                attachments: Vec::new(),
            })
            .await
            .unwrap();
        let Inserted::New(m) = inserted else {
            panic!("new")
        };
        last = m.id;
    }
    // An edit, a reaction and a deletion: entries of the log as well.
    let change = |message_id, user_id, change| MessageChange {
        message_id,
        user_id,
        change,
        may_delete_any: false,
        at: 40,
    };
    for request in [
        change(
            last,
            bob.id,
            Change::Edit {
                body: "edited for @ana".into(),
            },
        ),
        change(
            last,
            ana.id,
            Change::React {
                emoji: "👍".into()
            },
        ),
        change(last - 1, ana.id, Change::Delete),
    ] {
        let Changed::Logged { id, .. } = old.change_message(request).await.unwrap() else {
            panic!("logged")
        };
        assert!(id > last);
        last = id;
    }
    old.set_read_marker(general.id, bob.id, last - 5)
        .await
        .unwrap();
    let session = old
        .create_session(bob.id, [7; 32], "laptop", 5, i64::MAX)
        .await
        .unwrap();
    old.create_invite(crate::invite([9; 32], Some(ana.id), 6, None))
        .await
        .unwrap();
    let revoked = old
        .create_invite(crate::invite([8; 32], None, 7, Some(100)))
        .await
        .unwrap();
    old.revoke_invite(Some(ana.id), revoked, 8).await.unwrap();
    let dan = crate::user(&old, "dan").await;
    old.manage_member(None, dan.id, MemberAction::Disable, 9)
        .await
        .unwrap();
    old.close().await;
    drop(old);

    let url = Postgres::shared().fresh_database().unwrap();
    let path = dir.path().join("tidings.db");
    let copied = copy_sqlite_to_postgres(&path, &url).await.unwrap();
    assert_eq!(
        copied,
        Copied {
            users: 3,
            invites: 2,
            sessions: 1,
            rooms: 2,
            members: 5,
            messages: 2501,
            // One mention moved from bob to ana, one deleted.
            mentions: 2499,
            changes: 3,
            reactions: 1,
            // Two invites made, one revoked, dan disabled.
            audit: 4,
            attachments: 3,
        }
    );

    let old = Store::open(&path, StoreOptions::default()).unwrap();
    let new = Store::connect(&url, StoreOptions::default()).await.unwrap();
    assert_eq!(new.users().await.unwrap(), old.users().await.unwrap());
    assert_eq!(
        new.members_for_admin(10).await.unwrap(),
        old.members_for_admin(10).await.unwrap()
    );
    assert_eq!(new.invites().await.unwrap(), old.invites().await.unwrap());
    for id in ["a1", "a2", "u1"] {
        assert_eq!(
            new.attachment(id).await.unwrap(),
            old.attachment(id).await.unwrap()
        );
    }
    assert_eq!(
        new.audit_log(100).await.unwrap(),
        old.audit_log(100).await.unwrap()
    );
    for user in [ana.id, bob.id] {
        assert_eq!(
            new.rooms_of(user).await.unwrap(),
            old.rooms_of(user).await.unwrap()
        );
        assert_eq!(
            new.messages_since(user, 0, 5000).await.unwrap(),
            old.messages_since(user, 0, 5000).await.unwrap()
        );
    }
    assert_eq!(
        new.session_by_token_hash(&[7; 32]).await.unwrap(),
        Some(session)
    );
    assert_eq!(new.latest_message_id().await.unwrap(), last);

    // It goes on: the invite admits someone, new rows continue the ids, the cursor holds.
    let cy = new
        .register_with_invite([9; 32], "cy", "h", 20)
        .await
        .unwrap();
    assert!(cy.id > bob.id);
    assert!(
        new.is_member(general.id, cy.id).await.unwrap(),
        "the room for everyone is one still"
    );
    let invite = new
        .create_invite(crate::invite([6; 32], None, 21, None))
        .await
        .unwrap();
    assert!(invite > revoked);
    let room = new.create_room("more", cy.id, 21).await.unwrap();
    assert!(room.id > dm.id);
    let Inserted::New(next) = new
        .insert_message(NewMessage {
            room_id: general.id,
            author_id: ana.id,
            client_id: Some("after".into()),
            body: "after the move".into(),
            sent_at: 30,
            reply_to: None,
            attachments: Vec::new(),
        })
        .await
        .unwrap()
    else {
        panic!("new")
    };
    assert!(next.id > last);
    let since = new.messages_since(bob.id, last, 10).await.unwrap();
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].message().body, "after the move");
    // A resend from before the move is still recognised.
    assert!(matches!(
        new.insert_message(NewMessage {
            room_id: general.id,
            author_id: bob.id,
            client_id: Some("c1".into()),
            body: "again".into(),
            sent_at: 31,
            reply_to: None,
            attachments: Vec::new(),
        })
        .await
        .unwrap(),
        Inserted::Duplicate(_)
    ));

    // A target that already holds a group is refused, and left as it was.
    assert!(matches!(
        copy_sqlite_to_postgres(&path, &url).await,
        Err(StoreError::NotAllowed)
    ));
    assert_eq!(new.users().await.unwrap().len(), 4);
}
