//! The owner's admin screen on the real window: the server's status, a member disabled (their
//! app locks), enabled and given a new password, an invite for several people made and revoked,
//! someone else's message deleted from its toolbar — and every one of those in the audit log.

use fantoccini::Locator;
use tidings_client::ClientEvent;
use tidings_proto::v1::Invite;
use tidings_tests::{OWNER, TestServer, http_client};

use crate::support::{Window, literal, login_with, second_user, testid};

/// The member row of `name`, optionally with `more` XPath predicates.
fn member(name: &str, more: &str) -> String {
    format!(
        "//*[@data-testid='member-row'][@data-name={}]{more}",
        literal(name)
    )
}

/// Clicks the button `action` of `name`'s row.
async fn act(window: &Window, name: &str, action: &str) {
    window
        .wait_for(
            Locator::XPath(&member(
                name,
                &format!("//button[@data-testid='member-{action}'][not(@disabled)]"),
            )),
            &format!("{action} on {name}"),
        )
        .await
        .click()
        .await
        .unwrap_or_else(|err| panic!("clicking {action} on {name}: {err}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_administers_the_group_from_the_admin_screen() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let ops = owner.create_room("ops").await.room.id;
    let for_bob: Invite = owner.post("/api/invites", &()).await;
    let mut bob = second_user(&server.url(""), &for_bob.code, "bob").await;
    bob.client.join_room(ops).await.expect("bob joins #ops");

    let window = Window::open("admin").await;
    window.join_server(&server.url(""), OWNER, "").await;
    window.click(&format!("room-{ops}")).await;
    window.room_open(ops).await;

    // An owner deletes someone else's message from its toolbar.
    bob.client
        .send(ops, "an unfortunate message")
        .await
        .unwrap();
    let row = window
        .wait_for(
            Locator::XPath(&format!(
                "//*[@data-testid='message'][.//*[@data-testid='message-body'][.={}]]",
                literal("an unfortunate message")
            )),
            "bob's message",
        )
        .await;
    window.hover(&row).await;
    row.find(Locator::Css(&testid("message-delete")))
        .await
        .expect("Delete on someone else's message, for an owner")
        .click()
        .await
        .unwrap();
    bob.until(
        "the deletion",
        |e| matches!(e, ClientEvent::Changed(m) if m.deleted_at.is_some()),
    )
    .await;

    // The admin screen: the server as it is.
    window.click("admin-button").await;
    assert_eq!(
        window.text("status-version").await,
        env!("CARGO_PKG_VERSION")
    );
    let connections = window.text("status-connections").await;
    assert!(
        connections.contains("2 WebSocket") && connections.contains("2 event feed"),
        "{connections}"
    );
    assert!(window.text("status-database").await.ends_with("(SQLite)"));
    window
        .wait_for(
            Locator::XPath(&member(OWNER, "[.//*[.='you']]")),
            "the owner's own row",
        )
        .await;
    let own_buttons = window
        .driver
        .find_all(Locator::XPath(&member(OWNER, "//button")))
        .await
        .unwrap();
    assert!(own_buttons.is_empty(), "no action on oneself");

    // Disabled: bob's app locks; enabled again; a new password, shown once, lets bob in.
    act(&window, "bob", "disable").await;
    bob.until("bob's session revoked", |e| {
        matches!(e, ClientEvent::Locked(_))
    })
    .await;
    window
        .wait_for(
            Locator::XPath(&member("bob", "[@data-disabled='true']")),
            "bob disabled",
        )
        .await;
    window.shot("disabled").await;
    act(&window, "bob", "enable").await;
    window
        .wait_for(
            Locator::XPath(&member("bob", "[@data-disabled='false']")),
            "bob enabled",
        )
        .await;
    act(&window, "bob", "reset_password").await;
    let password = window.text("new-password").await;
    assert_eq!(password.len(), 19, "{password}");
    login_with(&server.url(""), "bob", &password).await;

    // An invite for three, until revoked: its code shown once, then revoked.
    let uses = window.interactable("invite-uses").await;
    uses.clear().await.unwrap();
    uses.send_keys("3").await.unwrap();
    window
        .find("invite-expiry")
        .await
        .select_by_value("")
        .await
        .unwrap();
    window.click("invite-create").await;
    let code = window.text("created-code").await;
    assert_eq!(
        window.text("created-link").await,
        format!("{}/#invite={code}", server.url(""))
    );
    let open = "//*[@data-testid='invite-row'][@data-state='open']\
                [.//*[@data-testid='invite-uses-shown'][starts-with(., 'used 0 of 3')]\
                [contains(., 'never expires')]]";
    window
        .wait_for(Locator::XPath(open), "the new invite, open")
        .await;
    window.shot("invite-made").await;
    window
        .wait_for(
            Locator::XPath(&format!("{open}//button[@data-testid='invite-revoke']")),
            "its Revoke",
        )
        .await
        .click()
        .await
        .unwrap();
    window
        .wait_for(
            Locator::XPath("//*[@data-testid='invite-row'][@data-state='revoked']"),
            "the invite revoked",
        )
        .await;
    let refused = http_client()
        .post(server.url("/api/register"))
        .json(&serde_json::json!({"invite": code, "name": "cy", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "a revoked invite admits nobody");

    // Every action, newest first.
    let entries = window
        .driver
        .find_all(Locator::Css(&testid("audit-entry")))
        .await
        .unwrap();
    let mut actions = Vec::new();
    for entry in &entries {
        actions.push(entry.attr("data-action").await.unwrap().unwrap_or_default());
    }
    assert_eq!(
        actions,
        [
            "invite_revoked",
            "invite_created",
            "password_reset",
            "enabled",
            "disabled",
            "message_deleted",
            "invite_created",
        ]
    );
    let newest = entries[0].text().await.unwrap();
    assert!(
        newest.ends_with(&format!("{OWNER} revoked invite 2")),
        "{newest}"
    );
    window.shot("admin").await;
}
