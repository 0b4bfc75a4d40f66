//! Messages reach the window, a message in a room that is not open raises a desktop
//! notification, and clicking the notification brings that room into view.

use std::time::Instant;

use crate::support::{UI_WAIT, Window, second_user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_another_room_notifies_and_clicking_it_opens_that_room() {
    let mut window = Window::open("notify").await;
    let hosted = window.host_group("ana").await;
    let bo = second_user(&hosted.address, &hosted.invite, "bo").await;

    // The owner makes #ops from the window; bo joins it.
    let ops = window.create_room("ops").await;
    bo.client.join_room(ops).await.expect("bo joins #ops");

    // A second room, open in the window from now on; bo joins and talks there.
    let lounge = window.create_room("lounge").await;
    bo.client.join_room(lounge).await.expect("bo joins #lounge");
    bo.client
        .send(lounge, "hello from bo")
        .await
        .expect("bo sends");
    let shown = window.message("hello from bo").await;
    assert_eq!(shown.text().await.unwrap(), "hello from bo");
    window.shot("message").await;

    // The window has the focus (WebKitWebDriver gives it), so #lounge is the room looked at.
    let focused = window
        .driver
        .execute("return document.hasFocus()", vec![])
        .await
        .expect("asking the page");
    assert_eq!(
        focused,
        serde_json::Value::Bool(true),
        "the window is focused"
    );

    // bo writes in #ops, which is not open: a notification, titled with who and where.
    bo.client
        .send(ops, "deploy at five")
        .await
        .expect("bo sends");
    let deadline = Instant::now() + UI_WAIT;
    let mut seen = Vec::new();
    let note = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(call) = window.notifications.next_within(left).await else {
            panic!("no notification for #ops within {UI_WAIT:?}; saw {seen:?}");
        };
        if call.summary.contains("#ops") {
            break call;
        }
        seen.push(call);
    };
    // #lounge was open in the focused window when bo wrote there: that raised nothing.
    assert!(seen.is_empty(), "only #ops notified: {seen:?}");
    assert_eq!(note.summary, "bo in #ops");
    assert_eq!(note.body, "deploy at five");
    assert_eq!(note.app_name, "Tidings");
    assert!(
        note.actions.iter().any(|a| a == "default"),
        "clickable: {:?}",
        note.actions
    );
    // Raised, not shown in the window: #lounge is still the open room, #ops counts it unread.
    window.room_open(lounge).await;
    window
        .attr_is(&format!("room-{ops}"), "data-unread", "1")
        .await;
    window.shot("notified").await;

    // The person clicks the notification.
    window.notifications.invoke_action(note.id, "default").await;
    window.room_open(ops).await;
    let shown = window.message("deploy at five").await;
    assert!(shown.is_displayed().await.unwrap());
    window.shot("clicked").await;
}
