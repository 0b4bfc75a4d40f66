//! Revoking the desktop's session from another device covers the window at once; the password
//! uncovers it with everything as it was. A session that simply expires says so.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use tidings_proto::v1::{Invite, Revoked};
use tidings_tests::{PASSWORD, TestServer, http_client};

use crate::support::{Window, login, not_interactable, report};

/// How soon the window must be covered after the revocation is answered.
const LOCK_WITHIN: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_locks_the_window_at_once_and_unlocking_keeps_the_draft() {
    let window = Window::open("lock").await;
    let hosted = window.host_group("ana").await;
    window.create_room("ops").await;

    // Half a reply, not sent.
    let draft = "half-written reply";
    window.type_into("composer", draft).await;

    // The owner, logged in elsewhere, ends every other session: the desktop's among them.
    let token = login(&hosted.address, "ana").await;
    let response = http_client()
        .delete(format!("{}/api/sessions", hosted.address))
        .bearer_auth(&token)
        .send()
        .await
        .expect("revoke request");
    let revoked_at = Instant::now();
    assert_eq!(response.status(), 200, "revoking the other sessions");
    let revoked: Revoked = response.json().await.expect("revoke body");
    assert_eq!(
        revoked.revoked.len(),
        1,
        "the desktop's session: {revoked:?}"
    );

    let lock = lock_screen(&window, LOCK_WITHIN * 5, Duration::from_millis(5)).await;
    let covered = revoked_at.elapsed();
    report(&format!("lock_ms={}", covered.as_millis()));
    assert!(lock.is_displayed().await.unwrap(), "the lock screen shows");
    assert!(
        covered <= LOCK_WITHIN,
        "the window was covered {covered:?} after the revocation; at most {LOCK_WITHIN:?}"
    );
    assert_eq!(
        window.text("lock-reason").await,
        "Session revoked on another device"
    );
    window.shot("locked").await;

    // Nothing of the chat shows or takes a click behind it.
    let app = window.driver.find(Locator::Id("app")).await.unwrap();
    assert!(!app.is_displayed().await.unwrap(), "the chat is hidden");
    assert!(app.attr("inert").await.unwrap().is_some(), "and inert");
    let composer = window.find("composer").await;
    assert!(!composer.is_displayed().await.unwrap());
    let refused = composer
        .click()
        .await
        .expect_err("the composer cannot be clicked while locked");
    assert!(not_interactable(&refused), "{refused:?}");

    // The password opens it again, as it was.
    unlocks_keeping(&window, draft).await;
    window.online().await;
    window.shot("unlocked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_locks_the_window_saying_it_expired() {
    // A login that lasts ten seconds, on a server that checks its chat connections four times a
    // second: whichever of the feed and the chat channel ends the session first, the window must
    // say that it expired, not that it was revoked.
    let lifetime = Duration::from_secs(10);
    let server = TestServer::start_with(|config| {
        config.session.lifetime = lifetime;
        config.chat.heartbeat = Duration::from_millis(250);
    })
    .await;
    let owner = server.owner().await;
    let invite: Invite = owner.post("/api/invites", &()).await;
    let window = Window::open("expiry").await;
    let joined = Instant::now();
    window
        .join_server(&server.url(""), "ana", &invite.code)
        .await;
    window.create_room("ops").await;
    let draft = "kept through the expiry";
    window.type_into("composer", draft).await;

    let lock = lock_screen(&window, lifetime * 2, Duration::from_millis(50)).await;
    assert!(lock.is_displayed().await.unwrap(), "the lock screen shows");
    assert!(
        joined.elapsed() >= lifetime,
        "locked after {:?}, before the session's lifetime",
        joined.elapsed()
    );
    assert_eq!(window.text("lock-reason").await, "Session expired");
    window.shot("expired").await;

    unlocks_keeping(&window, draft).await;
    server.stop().await;
}

/// Waits up to `within` for the lock screen to show, looking every `poll`.
async fn lock_screen(
    window: &Window,
    within: Duration,
    poll: Duration,
) -> fantoccini::elements::Element {
    window
        .wait_within(
            Locator::XPath("//*[@data-testid='lock-screen'][not(@hidden)]"),
            "the lock screen",
            within,
            poll,
        )
        .await
}

/// Unlocks with the password and checks the window is as it was: the draft in the composer.
async fn unlocks_keeping(window: &Window, draft: &str) {
    window.type_into("lock-password", PASSWORD).await;
    window.click("unlock-submit").await;
    window
        .wait_for(
            Locator::XPath("//*[@id='lock'][@hidden]"),
            "the lock screen gone",
        )
        .await;
    let composer = window.interactable("composer").await;
    assert_eq!(
        composer.prop("value").await.unwrap().as_deref(),
        Some(draft),
        "the draft is still in the composer"
    );
}
