//! Revoking the browser's session from another device (the client core, as `tidings revoke`
//! does it) covers the page within a second; the password uncovers it with the draft and the
//! history as they were.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use tidings_client::notify::RecordingNotifier;
use tidings_tests::{PASSWORD, TestServer, client_options};

use crate::support::{Browser, fresh, invite, report};

/// How soon the page must be covered after the revocation is answered.
const LOCK_WITHIN: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_locks_the_page_at_once_and_unlocking_keeps_the_draft() {
    fresh("lock");
    let server = TestServer::start().await;
    let page = Browser::open("lock", "ana", &server.url("/")).await;
    page.register("ana", &invite(&server).await).await;
    page.create_room("ops").await;
    page.send("said before the lock").await;
    page.message("said before the lock").await;
    let draft = "half-written reply";
    page.type_into("composer", draft).await;

    // Ana on another device: the client core, logged in as her.
    let dir = tempfile::tempdir().expect("temp dir");
    let notes = Arc::new(RecordingNotifier::new());
    let other = tidings_client::Client::open(&dir.path().join("client.db"), client_options(&notes))
        .expect("opening the other device");
    other
        .login(&server.url(""), "ana", PASSWORD)
        .await
        .expect("logging in elsewhere");
    let sessions = other.sessions().await.expect("listing sessions");
    let web = sessions
        .iter()
        .find(|s| !s.current && s.device.contains("(web)"))
        .unwrap_or_else(|| panic!("the browser's session among {sessions:?}"));
    other
        .revoke(web.id)
        .await
        .expect("revoking the browser's session");
    let revoked_at = Instant::now();

    let lock = page
        .wait_within(
            Locator::XPath("//*[@data-testid='lock-screen'][not(@hidden)]"),
            "the lock screen",
            LOCK_WITHIN * 5,
            Duration::from_millis(5),
        )
        .await;
    let covered = revoked_at.elapsed();
    report(&format!("browser lock_ms={}", covered.as_millis()));
    assert!(lock.is_displayed().await.unwrap(), "the lock screen shows");
    assert!(
        covered <= LOCK_WITHIN,
        "the page was covered {covered:?} after the revocation; at most {LOCK_WITHIN:?}"
    );
    assert_eq!(
        page.text("lock-reason").await,
        "Session revoked on another device"
    );
    let app = page.driver.find(Locator::Id("app")).await.unwrap();
    assert!(!app.is_displayed().await.unwrap(), "the chat is hidden");
    assert!(app.attr("inert").await.unwrap().is_some(), "and inert");
    page.shot("locked").await;

    // The password opens it again, in place: the draft and the history as they were.
    page.type_into("lock-password", PASSWORD).await;
    page.click("unlock-submit").await;
    page.wait_for(
        Locator::XPath("//*[@id='lock'][@hidden]"),
        "the lock screen gone",
    )
    .await;
    let composer = page.interactable("composer").await;
    assert_eq!(
        composer.prop("value").await.unwrap().as_deref(),
        Some(draft),
        "the draft is still in the composer"
    );
    page.message("said before the lock").await;
    page.online().await;
    // The new session works: a message goes through.
    page.driver
        .execute(
            "document.querySelector('[data-testid=\"composer\"]').value = '';",
            vec![],
        )
        .await
        .expect("clearing the composer");
    page.send("said after the unlock").await;
    page.wait_for(
        Locator::XPath(&tidings_tests::webdriver::message_xpath_sent(
            "said after the unlock",
        )),
        "the message sent after unlocking",
    )
    .await;
    page.shot("unlocked").await;
}
