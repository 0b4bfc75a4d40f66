//! The server goes away and comes back: the window says so, a message written meanwhile waits
//! in the outbox, and is delivered exactly once when the server is back.

use std::time::Duration;

use fantoccini::Locator;
use tidings_proto::v1::{HistoryPage, Invite};
use tidings_tests::TestServer;

use crate::support::{UI_WAIT, Window, message_xpath_pending, message_xpath_sent, testid};

/// The app reconnects with its shipped backoff (half a second, doubling, jittered): after a few
/// seconds down, the next attempt may be several seconds off.
const RECONNECT_WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_the_server_is_down_is_delivered_once_when_it_is_back() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let ops = owner.create_room("ops").await.room.id;
    let invite: Invite = owner.post("/api/invites", &()).await;

    // Joining a server someone else runs, with an invite.
    let window = Window::open("reconnect").await;
    window
        .join_server(&server.url(""), "ana", &invite.code)
        .await;
    window.click("browse-rooms").await;
    window.click(&format!("directory-{ops}")).await;
    window.room_open(ops).await;

    // The server stops.
    let (dir, config, addr) = server.stop().await;
    let bar = window
        .wait_for(
            Locator::Css(&format!(
                "{}:not([data-state=\"online\"])",
                testid("connection")
            )),
            "the connection bar leaving online",
        )
        .await;
    let state = bar.attr("data-state").await.unwrap().unwrap_or_default();
    assert!(
        state == "offline" || state == "connecting",
        "offline or connecting, got {state:?}"
    );
    window.shot("offline").await;

    // Written meanwhile: shown as sending, kept in the outbox.
    let body = "written while the server was down";
    window.send(body).await;
    let pending = window
        .wait_for(
            Locator::XPath(&message_xpath_pending(body)),
            "the pending message",
        )
        .await;
    assert!(
        pending.attr("data-client-id").await.unwrap().is_some(),
        "a pending row carries its client id"
    );
    assert_eq!(window.text("message-status").await, "sending…");
    window.shot("pending").await;

    // The server is back on the same address.
    let server = TestServer::serve_again(dir, config, addr).await;
    window
        .wait_within(
            Locator::Css(&format!("{}[data-state=\"online\"]", testid("connection"))),
            "online again",
            RECONNECT_WAIT,
            Duration::from_millis(100),
        )
        .await;
    // Sent: a stored row (not a pending one) whose text is the body.
    window
        .wait_for(
            Locator::XPath(&message_xpath_sent(body)),
            "the message, sent",
        )
        .await;
    window
        .wait_within(
            Locator::XPath(
                "//*[@data-testid='timeline'][not(.//*[@data-testid='message-pending'])]",
            ),
            "no pending row left",
            UI_WAIT,
            Duration::from_millis(50),
        )
        .await;
    assert_eq!(window.count_messages(body).await, 1, "shown once");

    // Stored once.
    let history: HistoryPage = owner
        .at(&server)
        .get(&format!("/api/rooms/{ops}/messages"))
        .await;
    let copies: Vec<_> = history.messages.iter().filter(|m| m.body == body).collect();
    assert_eq!(copies.len(), 1, "one copy on the server: {copies:?}");
    assert_eq!(copies[0].author.name, "ana");
    window.shot("delivered").await;
}
