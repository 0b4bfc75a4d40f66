//! The connection setting: pinning long-polling moves the live connection over at once (the bar
//! says "Online · long-polling") and the chat goes on over it; "Automatic" moves it back to the
//! WebSocket.

use std::time::Duration;

use fantoccini::Locator;
use tidings_proto::v1::Invite;
use tidings_tests::{TestServer, post_message};

use crate::support::{Window, message_xpath_sent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinning_long_polling_moves_the_connection_and_the_chat_goes_on() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let ops = owner.create_room("ops").await.room.id;
    let invite: Invite = owner.post("/api/invites", &()).await;

    let window = Window::open("transport").await;
    window
        .join_server(&server.url(""), "ana", &invite.code)
        .await;
    window.click("browse-rooms").await;
    window.click(&format!("directory-{ops}")).await;
    window.room_open(ops).await;
    let bar_says = |text: &'static str| {
        window.wait_within(
            Locator::XPath(match text {
                "Online" => "//*[@data-testid='connection'][normalize-space(.)='Online']",
                _ => "//*[@data-testid='connection'][normalize-space(.)='Online · long-polling']",
            }),
            text,
            Duration::from_secs(20),
            Duration::from_millis(50),
        )
    };
    bar_says("Online").await;

    // Settings → Connection → Long-polling.
    window.click("settings-button").await;
    let select = window.interactable("transport").await;
    select.select_by_value("long_polling").await.unwrap();
    bar_says("Online · long-polling").await;
    window.shot("long-polling").await;
    window.click("settings-close").await;

    // Both ways over long-polling.
    post_message(&owner, ops, "o-1", "heard over long-polling").await;
    window.message("heard over long-polling").await;
    window.send("said over long-polling").await;
    window
        .wait_for(
            Locator::XPath(&message_xpath_sent("said over long-polling")),
            "the message, sent",
        )
        .await;

    // Back to automatic: the WebSocket again.
    window.click("settings-button").await;
    let select = window.interactable("transport").await;
    assert_eq!(
        select.prop("value").await.unwrap().as_deref(),
        Some("long_polling"),
        "the setting is shown as kept"
    );
    select.select_by_value("").await.unwrap();
    bar_says("Online").await;
    let bar = window.find("connection").await;
    assert_eq!(
        bar.attr("data-state").await.unwrap().as_deref(),
        Some("online")
    );
    window.shot("automatic").await;
}
