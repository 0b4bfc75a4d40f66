use crate::on_both;

use tidings_store::{Role, Store, StoreError};

const DAY: i64 = 86_400_000;

async fn user_names_are_unique_ignoring_case(store: Store) {
    let ana = store
        .create_user("Ana", "h1", Role::Owner, 10)
        .await
        .unwrap();
    assert_eq!(ana.name, "Ana");
    assert_eq!(ana.role, Role::Owner);
    assert_eq!(ana.created_at, 10);
    assert!(matches!(
        store.create_user("ana", "h2", Role::Member, 11).await,
        Err(StoreError::NameTaken)
    ));
    assert!(matches!(
        store.create_user("ANA", "h2", Role::Member, 11).await,
        Err(StoreError::NameTaken)
    ));

    let (found, hash) = store.user_by_name("aNa").await.unwrap().unwrap();
    assert_eq!(found, ana);
    assert_eq!(hash, "h1");
    assert_eq!(store.user_by_name("bob").await.unwrap(), None);
    assert!(store.has_owner().await.unwrap());

    let bob = store
        .create_user("bob", "h3", Role::Member, 12)
        .await
        .unwrap();
    assert_eq!(store.users().await.unwrap(), vec![ana, bob.clone()]);

    store.set_password(bob.id, "h4").await.unwrap();
    assert_eq!(store.user_by_name("bob").await.unwrap().unwrap().1, "h4");
    assert!(matches!(
        store.set_password(999, "h").await,
        Err(StoreError::NotFound)
    ));
}

async fn an_invite_admits_one_member(store: Store) {
    let owner = store
        .create_user("owner", "h", Role::Owner, 0)
        .await
        .unwrap();
    let code = [7u8; 32];
    store
        .create_invite(code, Some(owner.id), 0, Some(DAY))
        .await
        .unwrap();

    let ana = store
        .register_with_invite(code, "ana", "h", 100)
        .await
        .unwrap();
    assert_eq!(ana.role, Role::Member);
    assert_eq!(store.user(ana.id).await.unwrap(), Some(ana));

    assert!(matches!(
        store.register_with_invite(code, "bob", "h", 200).await,
        Err(StoreError::InviteInvalid)
    ));
    assert!(matches!(
        store.register_with_invite([9u8; 32], "bob", "h", 200).await,
        Err(StoreError::InviteInvalid)
    ));
    assert_eq!(store.user_by_name("bob").await.unwrap(), None);
}

async fn an_expired_invite_is_refused(store: Store) {
    let code = [1u8; 32];
    store.create_invite(code, None, 0, Some(DAY)).await.unwrap();
    assert!(matches!(
        store.register_with_invite(code, "ana", "h", DAY).await,
        Err(StoreError::InviteInvalid)
    ));
    assert_eq!(store.user_by_name("ana").await.unwrap(), None);

    let forever = [2u8; 32];
    store.create_invite(forever, None, 0, None).await.unwrap();
    store
        .register_with_invite(forever, "ana", "h", 100 * DAY)
        .await
        .unwrap();
}

async fn a_taken_name_leaves_the_invite_usable(store: Store) {
    super::user(&store, "ana").await;
    let code = [3u8; 32];
    store.create_invite(code, None, 0, None).await.unwrap();

    assert!(matches!(
        store.register_with_invite(code, "ANA", "h", 1).await,
        Err(StoreError::NameTaken)
    ));
    let bob = store
        .register_with_invite(code, "bob", "h", 2)
        .await
        .unwrap();
    assert_eq!(bob.name, "bob");
}

async fn sessions_are_found_by_token_hash_and_revoked(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;

    let laptop = store
        .create_session(ana.id, [1; 32], "laptop", 100, 100 + DAY)
        .await
        .unwrap();
    let phone = store
        .create_session(ana.id, [2; 32], "phone", 200, 200 + DAY)
        .await
        .unwrap();
    let tablet = store
        .create_session(ana.id, [3; 32], "tablet", 300, 300 + DAY)
        .await
        .unwrap();
    let expired = store
        .create_session(ana.id, [4; 32], "old", 0, 50)
        .await
        .unwrap();
    let bobs = store
        .create_session(bob.id, [5; 32], "desk", 100, 100 + DAY)
        .await
        .unwrap();
    // A token hash is unique: the database's own constraint refuses a second one.
    assert!(matches!(
        store.create_session(ana.id, [1; 32], "dup", 1, 2).await,
        Err(StoreError::Sqlite(_) | StoreError::Postgres(_))
    ));
    assert!(matches!(
        store.create_session(999, [6; 32], "ghost", 1, 2).await,
        Err(StoreError::NotFound)
    ));

    assert_eq!(
        store.session_by_token_hash(&[2; 32]).await.unwrap(),
        Some(phone.clone())
    );
    assert_eq!(store.session_by_token_hash(&[9; 32]).await.unwrap(), None);
    assert_eq!(
        store.session(laptop.id).await.unwrap(),
        Some(laptop.clone())
    );

    store.touch_session(laptop.id, 500).await.unwrap();
    store.touch_session(laptop.id, 400).await.unwrap();
    assert_eq!(
        store
            .session(laptop.id)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        500
    );
    assert!(matches!(
        store.touch_session(999, 1).await,
        Err(StoreError::NotFound)
    ));

    let newest_first: Vec<_> = store
        .sessions_of(ana.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        newest_first,
        vec![tablet.id, phone.id, laptop.id, expired.id]
    );

    // Only the owner can revoke, and only once.
    assert!(!store.revoke_session(bob.id, phone.id, 600).await.unwrap());
    assert!(store.revoke_session(ana.id, phone.id, 600).await.unwrap());
    assert!(!store.revoke_session(ana.id, phone.id, 700).await.unwrap());
    let revoked = store.session(phone.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(600));
    assert_eq!(
        store.session_by_token_hash(&[2; 32]).await.unwrap(),
        Some(revoked)
    );

    // Revoking the others spares the kept one, the already revoked, the expired and other users'.
    let others = store
        .revoke_other_sessions(ana.id, laptop.id, 800)
        .await
        .unwrap();
    assert_eq!(others, vec![tablet.id]);
    let live: Vec<_> = store
        .sessions_of(ana.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![laptop.id, expired.id]);
    assert_eq!(store.sessions_of(bob.id).await.unwrap(), vec![bobs]);
    assert!(
        store
            .revoke_other_sessions(ana.id, laptop.id, 900)
            .await
            .unwrap()
            .is_empty()
    );
}

on_both!(
    user_names_are_unique_ignoring_case,
    an_invite_admits_one_member,
    an_expired_invite_is_refused,
    a_taken_name_leaves_the_invite_usable,
    sessions_are_found_by_token_hash_and_revoked
);
