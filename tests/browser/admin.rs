//! The admin screen in a browser, for the group's owner: the server's status, a member disabled
//! (their client locks), an invite for two made and revoked, and the audit log saying so.

use fantoccini::Locator;
use tidings_client::ClientEvent;
use tidings_tests::{OWNER, PASSWORD, TestClient, TestServer, http_client};

use crate::support::{Browser, fresh};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_administers_the_group_in_a_browser() {
    fresh("admin");
    let server = TestServer::start().await;
    let mut bob = TestClient::new(&server, "bob").await;
    let page = Browser::open("admin", OWNER, &server.url("/")).await;
    page.type_into("join-name", OWNER).await;
    page.type_into("join-password", PASSWORD).await;
    page.click("join-submit").await;
    page.online().await;

    page.click("admin-button").await;
    assert!(page.text("status-database").await.ends_with("(SQLite)"));
    assert_eq!(page.text("status-version").await, env!("CARGO_PKG_VERSION"));
    page.wait_for(
        Locator::XPath(
            "//*[@data-testid='member-row'][@data-name='bob']\
             //button[@data-testid='member-disable']",
        ),
        "Disable on bob's row",
    )
    .await
    .click()
    .await
    .unwrap();
    bob.until("bob's session revoked", |e| {
        matches!(e, ClientEvent::Locked(_))
    })
    .await;
    page.wait_for(
        Locator::XPath("//*[@data-testid='member-row'][@data-name='bob'][@data-disabled='true']"),
        "bob shown disabled",
    )
    .await;

    let uses = page.interactable("invite-uses").await;
    uses.clear().await.unwrap();
    uses.send_keys("2").await.unwrap();
    page.find("invite-expiry")
        .await
        .select_by_value("24")
        .await
        .unwrap();
    page.click("invite-create").await;
    let code = page.text("created-code").await;
    assert_eq!(
        page.text("created-link").await,
        format!("{}/#invite={code}", server.url(""))
    );
    let registered = http_client()
        .post(server.url("/api/register"))
        .json(&serde_json::json!({"invite": code, "name": "cy", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201, "the invite admits a first person");
    page.wait_for(
        Locator::XPath(
            "//*[@data-testid='invite-row'][@data-state='open']\
             [.//*[@data-testid='invite-uses-shown'][starts-with(., 'used 0 of 2')]]\
             //button[@data-testid='invite-revoke']",
        ),
        "the new invite's Revoke",
    )
    .await
    .click()
    .await
    .unwrap();
    page.wait_for(
        Locator::XPath(
            "//*[@data-testid='invite-row'][@data-state='revoked']\
             [.//*[@data-testid='invite-uses-shown'][starts-with(., 'used 1 of 2')]]",
        ),
        "the invite revoked, its use counted",
    )
    .await;

    let mut actions = Vec::new();
    for entry in page
        .driver
        .find_all(Locator::Css("[data-testid='audit-entry']"))
        .await
        .unwrap()
    {
        actions.push(entry.attr("data-action").await.unwrap().unwrap_or_default());
    }
    assert_eq!(
        actions,
        [
            "invite_revoked",
            "invite_created",
            "disabled",
            "invite_created"
        ]
    );
    page.shot("admin").await;
}
