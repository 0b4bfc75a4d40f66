use crate::{Followed, invite, on_both};

use tidings_store::{AuditAction, MemberAction, NewInvite, Role, Store, StoreError};

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

    let found = store.user_by_name("aNa").await.unwrap().unwrap();
    assert_eq!(found.user, ana);
    assert_eq!(found.password_hash, "h1");
    assert!(!found.disabled);
    assert_eq!(store.user_by_name("bob").await.unwrap(), None);
    assert!(store.has_owner().await.unwrap());

    let bob = store
        .create_user("bob", "h3", Role::Member, 12)
        .await
        .unwrap();
    assert_eq!(store.users().await.unwrap(), vec![ana, bob.clone()]);
}

async fn an_invite_admits_one_member(store: Store) {
    let owner = store
        .create_user("owner", "h", Role::Owner, 0)
        .await
        .unwrap();
    let code = [7u8; 32];
    store
        .create_invite(invite(code, Some(owner.id), 0, Some(DAY)))
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
    store
        .create_invite(invite(code, None, 0, Some(DAY)))
        .await
        .unwrap();
    assert!(matches!(
        store.register_with_invite(code, "ana", "h", DAY).await,
        Err(StoreError::InviteInvalid)
    ));
    assert_eq!(store.user_by_name("ana").await.unwrap(), None);

    let forever = [2u8; 32];
    store
        .create_invite(invite(forever, None, 0, None))
        .await
        .unwrap();
    store
        .register_with_invite(forever, "ana", "h", 100 * DAY)
        .await
        .unwrap();
}

async fn a_taken_name_leaves_the_invite_usable(store: Store) {
    super::user(&store, "ana").await;
    let code = [3u8; 32];
    store
        .create_invite(invite(code, None, 0, None))
        .await
        .unwrap();

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

async fn an_invite_admits_as_many_as_it_allows_until_revoked(store: Store) {
    let owner = store
        .create_user("owner", "h", Role::Owner, 0)
        .await
        .unwrap();
    let two = store
        .create_invite(NewInvite {
            max_uses: 2,
            ..invite([4; 32], Some(owner.id), 10, Some(DAY))
        })
        .await
        .unwrap();
    let spare = store
        .create_invite(invite([5; 32], None, 20, None))
        .await
        .unwrap();
    assert!(spare > two);
    store
        .register_with_invite([4; 32], "ana", "h", 30)
        .await
        .unwrap();
    store
        .register_with_invite([4; 32], "bob", "h", 40)
        .await
        .unwrap();
    assert!(matches!(
        store.register_with_invite([4; 32], "cy", "h", 50).await,
        Err(StoreError::InviteInvalid)
    ));

    assert!(
        store
            .revoke_invite(Some(owner.id), spare, 60)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_invite(Some(owner.id), spare, 70)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.revoke_invite(None, 999, 70).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.register_with_invite([5; 32], "cy", "h", 80).await,
        Err(StoreError::InviteInvalid)
    ));
    assert_eq!(store.user_by_name("cy").await.unwrap(), None);

    let listed = store.invites().await.unwrap();
    let shown: Vec<_> = listed
        .iter()
        .map(|i| {
            (
                i.id,
                i.created_by,
                i.max_uses,
                i.uses,
                i.last_used_at,
                i.revoked_at,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (spare, None, 1, 0, None, Some(60)),
            (two, Some(owner.id), 2, 2, Some(40), None)
        ]
    );
    assert_eq!(listed[1].expires_at, Some(DAY));

    let audit: Vec<_> = store
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.invite, e.at))
        .collect();
    assert_eq!(
        audit,
        [
            (Some(owner.id), AuditAction::InviteRevoked, Some(spare), 60),
            (None, AuditAction::InviteCreated, Some(spare), 20),
            (Some(owner.id), AuditAction::InviteCreated, Some(two), 10),
        ]
    );
}

async fn the_owner_manages_members_and_every_action_is_audited(store: Store) {
    let mut followed = Followed::start(&store);
    let ana = store
        .create_user("ana", "h-ana", Role::Owner, 0)
        .await
        .unwrap();
    let bob = super::user(&store, "bob").await;
    let laptop = store
        .create_session(bob.id, [1; 32], "laptop", 10, 10 + DAY)
        .await
        .unwrap();
    let phone = store
        .create_session(bob.id, [2; 32], "phone", 20, 20 + DAY)
        .await
        .unwrap();
    store.touch_session(phone.id, 25).await.unwrap();
    let owners = Some(ana.id);

    let members = store.members_for_admin(30).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        (
            members[1].user.id,
            members[1].live_sessions,
            members[1].last_seen_at,
            members[1].disabled_at
        ),
        (bob.id, 2, Some(25), None)
    );

    // Disabling ends every session, in the log; doing it again changes nothing.
    let done = store
        .manage_member(owners, bob.id, MemberAction::Disable, 100)
        .await
        .unwrap();
    assert!(done.changed);
    assert_eq!(done.revoked, [laptop.id, phone.id]);
    let ended = format!(
        "{:?}",
        tidings_store::LogEntry::SessionEnded {
            user: bob.id,
            session: phone.id
        }
    );
    followed.entries_through(&ended).await;
    assert!(store.user_by_name("bob").await.unwrap().unwrap().disabled);
    assert_eq!(
        store.sessions_revoked_since(100).await.unwrap(),
        [(bob.id, laptop.id, 100), (bob.id, phone.id, 100)],
        "what a server on the same file hears of the revocations"
    );
    assert!(store.sessions_revoked_since(101).await.unwrap().is_empty());
    let members = store.members_for_admin(110).await.unwrap();
    assert_eq!(
        (members[1].disabled_at, members[1].live_sessions),
        (Some(100), 0)
    );
    let again = store
        .manage_member(owners, bob.id, MemberAction::Disable, 120)
        .await
        .unwrap();
    assert!(!again.changed);
    store
        .manage_member(owners, bob.id, MemberAction::Enable, 130)
        .await
        .unwrap();
    assert!(!store.user_by_name("bob").await.unwrap().unwrap().disabled);

    // A new password ends the sessions made since.
    let desk = store
        .create_session(bob.id, [3; 32], "desk", 140, 140 + DAY)
        .await
        .unwrap();
    let reset = MemberAction::ResetPassword {
        password_hash: "h-new".to_owned(),
    };
    let done = store
        .manage_member(owners, bob.id, reset, 150)
        .await
        .unwrap();
    assert_eq!(done.revoked, [desk.id]);
    assert_eq!(
        store
            .user_by_name("bob")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "h-new"
    );
    assert_eq!(
        store.session(desk.id).await.unwrap().unwrap().revoked_at,
        Some(150)
    );

    // Roles: never an owner demoting or disabling themself, never the group left without one.
    store
        .manage_member(owners, bob.id, MemberAction::SetRole(Role::Owner), 160)
        .await
        .unwrap();
    let own_reset = MemberAction::ResetPassword {
        password_hash: "h".to_owned(),
    };
    for action in [
        MemberAction::SetRole(Role::Member),
        MemberAction::Disable,
        own_reset,
    ] {
        assert!(matches!(
            store.manage_member(owners, ana.id, action, 170).await,
            Err(StoreError::NotAllowed)
        ));
    }
    store
        .manage_member(
            Some(bob.id),
            ana.id,
            MemberAction::SetRole(Role::Member),
            180,
        )
        .await
        .unwrap();
    assert_eq!(
        store.user(ana.id).await.unwrap().unwrap().role,
        Role::Member
    );
    for action in [MemberAction::SetRole(Role::Member), MemberAction::Disable] {
        assert!(matches!(
            store.manage_member(None, bob.id, action, 190).await,
            Err(StoreError::NotAllowed)
        ));
    }
    assert!(matches!(
        store
            .manage_member(None, 999, MemberAction::Enable, 190)
            .await,
        Err(StoreError::NotFound)
    ));

    let audit: Vec<_> = store
        .audit_log(3)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.at, e.actor, e.action, e.user, e.detail))
        .collect();
    let role = |r: &str| Some(r.to_owned());
    assert_eq!(
        audit,
        [
            (
                180,
                Some(bob.id),
                AuditAction::RoleChanged,
                Some(ana.id),
                role("member")
            ),
            (
                160,
                owners,
                AuditAction::RoleChanged,
                Some(bob.id),
                role("owner")
            ),
            (150, owners, AuditAction::PasswordReset, Some(bob.id), None),
        ]
    );
    let actions: Vec<_> = store
        .audit_log(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            AuditAction::RoleChanged,
            AuditAction::RoleChanged,
            AuditAction::PasswordReset,
            AuditAction::Enabled,
            AuditAction::Disabled
        ],
        "what changed nothing or was refused is not audited"
    );
    assert!(store.size().await.unwrap() > 0);
}

on_both!(
    an_invite_admits_as_many_as_it_allows_until_revoked,
    the_owner_manages_members_and_every_action_is_audited,
    user_names_are_unique_ignoring_case,
    an_invite_admits_one_member,
    an_expired_invite_is_refused,
    a_taken_name_leaves_the_invite_usable,
    sessions_are_found_by_token_hash_and_revoked
);
