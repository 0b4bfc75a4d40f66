//! The owners' administration over HTTP: members disabled, enabled, given a new password,
//! promoted and demoted; invites with an expiry and a use count, listed and revoked; the server's
//! status; and the audit log of all of it.

use reqwest::{Method, StatusCode};
use tidings_proto::v1::{
    AdminOverview, AuditAction, CreateInvite, CreatedInvite, ErrorBody, ErrorCode, LoginRequest,
    ManageMember, MemberAction, MemberManaged, RegisterRequest, Role, close,
};
use tidings_tests::{Client, OWNER, PASSWORD, TestServer, post_message};

/// `action` done by `by` to `user`: the answer's status and body.
async fn manage(by: &Client, user: i64, action: MemberAction) -> (StatusCode, String) {
    let response = by
        .request(Method::POST, &format!("/api/admin/members/{user}"))
        .json(&ManageMember { action })
        .send()
        .await
        .expect("manage request");
    (response.status(), response.text().await.expect("body"))
}

async fn managed(by: &Client, user: i64, action: MemberAction) -> MemberManaged {
    let (status, body) = manage(by, user, action).await;
    assert_eq!(status, StatusCode::OK, "{action:?}: {body}");
    serde_json::from_str(&body).expect("a MemberManaged")
}

/// A login's status and error code (none when it succeeded).
async fn try_login(
    server: &TestServer,
    name: &str,
    password: &str,
) -> (StatusCode, Option<ErrorCode>) {
    let response = server
        .http()
        .post(server.url("/api/login"))
        .json(&LoginRequest {
            name: name.into(),
            password: password.into(),
            device: None,
        })
        .send()
        .await
        .expect("login request");
    let status = response.status();
    let code = if status.is_success() {
        None
    } else {
        Some(response.json::<ErrorBody>().await.expect("error body").code)
    };
    (status, code)
}

async fn register(server: &TestServer, code: &str, name: &str) -> (StatusCode, String) {
    let response = server
        .http()
        .post(server.url("/api/register"))
        .json(&RegisterRequest {
            invite: code.into(),
            name: name.into(),
            password: PASSWORD.into(),
            device: None,
        })
        .send()
        .await
        .expect("register request");
    (response.status(), response.text().await.expect("body"))
}

fn code_of(status: StatusCode, body: &str) -> (StatusCode, ErrorCode) {
    let error: ErrorBody = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, error.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_manages_members_and_every_action_is_audited() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let bob = server.user("bob").await;
    let mut chat = bob.chat().await;
    let mut feed = bob.feed(None);
    feed.expect(tidings_proto::v1::EVENT_SESSION).await;

    // Only owners see the screen.
    let response = bob.fetch("/api/admin").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let overview: AdminOverview = owner.get("/api/admin").await;
    assert_eq!(overview.status.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(overview.status.database, "sqlite");
    assert!(overview.status.database_bytes > 0);
    let open = |transport: &str| {
        overview
            .status
            .connections
            .iter()
            .find(|c| c.transport == transport)
            .map(|c| c.count)
    };
    assert_eq!(open("websocket"), Some(1), "{:?}", overview.status);
    assert_eq!(open("feed"), Some(1), "{:?}", overview.status);
    assert_eq!(open("poll"), Some(0), "every transport is listed");
    let names: Vec<(&str, Role, u32)> = overview
        .members
        .iter()
        .map(|m| (m.user.name.as_str(), m.role, m.live_sessions))
        .collect();
    // The owner's two sessions: the test harness's own login to invite bob, and this one.
    assert_eq!(names, [(OWNER, Role::Owner, 2), ("bob", Role::Member, 1)]);
    let bob_id = bob.user.id;
    let (status, body) = manage(&owner, owner.user.id, MemberAction::ResetPassword).await;
    assert_eq!(
        code_of(status, &body),
        (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
        "an owner's own password is not reset"
    );
    let (status, body) = manage(&bob, owner.user.id, MemberAction::Disable).await;
    assert_eq!(
        code_of(status, &body),
        (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
    );

    // Disabled: the open chat closes as revoked, the feed locks, and logging in is refused —
    // said as disabled only to whoever knows the password.
    let done = managed(&owner, bob_id, MemberAction::Disable).await;
    assert!(done.member.disabled_at.is_some());
    assert_eq!((done.sessions_ended, done.member.live_sessions), (1, 0));
    assert_eq!(chat.closed().await.code, close::SESSION_REVOKED);
    feed.expect(tidings_proto::v1::EVENT_LOCK).await;
    assert_eq!(
        try_login(&server, "bob", PASSWORD).await,
        (StatusCode::FORBIDDEN, Some(ErrorCode::AccountDisabled))
    );
    assert_eq!(
        try_login(&server, "bob", "not the password").await,
        (StatusCode::UNAUTHORIZED, Some(ErrorCode::BadCredentials))
    );
    managed(&owner, bob_id, MemberAction::Enable).await;
    let bob = server.login("bob", PASSWORD).await;

    // A new password: shown once, the old one refused, the sessions ended.
    let reset = managed(&owner, bob_id, MemberAction::ResetPassword).await;
    let password = reset.password.expect("the new password");
    assert!(password.len() >= 16, "{password}");
    assert_eq!(reset.sessions_ended, 1);
    assert_eq!(
        bob.fetch("/api/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        try_login(&server, "bob", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    let bob = server.login("bob", &password).await;

    // Promoted, bob administers; an owner does not demote themself; the last owner stays.
    managed(&owner, bob_id, MemberAction::Promote).await;
    let _: AdminOverview = bob.get("/api/admin").await;
    let (status, body) = manage(&owner, owner.user.id, MemberAction::Demote).await;
    assert_eq!(
        code_of(status, &body),
        (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
    );
    managed(&bob, owner.user.id, MemberAction::Demote).await;
    assert_eq!(
        owner.fetch("/api/admin").await.status(),
        StatusCode::FORBIDDEN
    );
    let (status, _) = manage(&bob, 999, MemberAction::Enable).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An owner deletes someone else's message: audited, with its author.
    let room = owner.create_room("ops").await.room.id;
    bob.join(room).await;
    let said = post_message(&owner, room, "regret-1", "something regrettable").await;
    let response = bob
        .request(Method::DELETE, &format!("/api/messages/{}", said.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let overview: AdminOverview = bob.get("/api/admin").await;
    let name = |user: &Option<tidings_proto::v1::UserRef>| match user {
        Some(user) => user.name.clone(),
        None => "-".to_owned(),
    };
    let audit: Vec<String> = overview
        .audit
        .iter()
        .map(|e| {
            format!(
                "{} {:?} {} {:?}",
                name(&e.actor),
                e.action,
                name(&e.user),
                e.role
            )
        })
        .collect();
    assert_eq!(
        audit,
        [
            "bob MessageDeleted owner None",
            "bob RoleChanged owner Some(Member)",
            "owner RoleChanged bob Some(Owner)",
            "owner PasswordReset bob None",
            "owner Enabled bob None",
            "owner Disabled bob None",
            // The invite the test harness made for bob.
            "owner InviteCreated - None",
        ]
    );
    assert_eq!(overview.audit[0].message, Some(said.id));
    assert!(overview.audit.windows(2).all(|w| w[0].at >= w[1].at));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_admit_as_many_as_they_allow_and_can_be_revoked() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let create = |max_uses: u32, expires_in_hours: Option<u32>| {
        owner
            .request(Method::POST, "/api/admin/invites")
            .json(&CreateInvite {
                expires_in_hours,
                max_uses,
            })
            .send()
    };
    for (uses, hours) in [
        (0, Some(1)),
        (1001, None),
        (1, Some(0)),
        (1, Some(24 * 366)),
    ] {
        let response = create(uses, hours).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{uses} uses, {hours:?} h"
        );
    }
    let response = create(2, Some(1)).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let two: CreatedInvite = response.json().await.unwrap();
    assert_eq!((two.invite.max_uses, two.invite.uses), (2, 0));
    assert_eq!(
        two.invite.expires_at.map(|at| at - two.invite.created_at),
        Some(3_600_000)
    );
    assert_eq!(two.invite.created_by.as_ref(), Some(&owner.user));

    for name in ["ana", "cy"] {
        let (status, body) = register(&server, &two.code, name).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    }
    let (status, body) = register(&server, &two.code, "dee").await;
    assert_eq!(
        code_of(status, &body),
        (StatusCode::FORBIDDEN, ErrorCode::InviteInvalid)
    );

    let forever: CreatedInvite = create(5, None).await.unwrap().json().await.unwrap();
    assert_eq!(forever.invite.expires_at, None);
    let revoke = |id: i64| {
        owner
            .request(Method::DELETE, &format!("/api/admin/invites/{id}"))
            .send()
    };
    assert_eq!(
        revoke(forever.invite.id).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        revoke(forever.invite.id).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(revoke(999).await.unwrap().status(), StatusCode::NOT_FOUND);
    let (status, body) = register(&server, &forever.code, "dee").await;
    assert_eq!(
        code_of(status, &body),
        (StatusCode::FORBIDDEN, ErrorCode::InviteInvalid)
    );

    // A member may neither make nor revoke invites here.
    let ana = server.login("ana", PASSWORD).await;
    let response = ana
        .request(Method::POST, "/api/admin/invites")
        .json(&CreateInvite {
            expires_in_hours: None,
            max_uses: 1,
        })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = ana
        .request(
            Method::DELETE,
            &format!("/api/admin/invites/{}", two.invite.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let overview: AdminOverview = owner.get("/api/admin").await;
    let listed: Vec<_> = overview
        .invites
        .iter()
        .map(|i| (i.id, i.uses, i.max_uses, i.revoked_at.is_some()))
        .collect();
    assert_eq!(
        listed,
        [
            (forever.invite.id, 0, 5, true),
            (two.invite.id, 2, 2, false)
        ],
        "newest first"
    );
    assert!(overview.invites[1].last_used_at.is_some());
    let audit: Vec<_> = overview
        .audit
        .iter()
        .map(|e| (e.action, e.invite))
        .collect();
    assert_eq!(
        audit,
        [
            (AuditAction::InviteRevoked, Some(forever.invite.id)),
            (AuditAction::InviteCreated, Some(forever.invite.id)),
            (AuditAction::InviteCreated, Some(two.invite.id)),
        ],
        "revoking an invite already revoked is not audited again"
    );
    server.stop().await;
}
