//! A message in another room raises a native notification (Chromium's, on the private D-Bus bus
//! the test records); a click on it opens that room. The tab's title counts the unread.

use tidings_tests::{TestClient, TestServer};

use crate::support::{Browser, fresh, invite, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_elsewhere_notifies_and_the_click_opens_its_room() {
    fresh("notify");
    let server = TestServer::start().await;
    let mut page = Browser::open("notify", "ana", &server.url("/")).await;
    page.register("ana", &invite(&server).await).await;
    let lab = page.create_room("lab").await;
    let ops = page.create_room("ops").await;
    let cy = TestClient::new(&server, "cy").await;
    cy.client.join_room(lab).await.expect("cy joins #lab");
    cy.client.join_room(ops).await.expect("cy joins #ops");

    // In the room the page shows: no notification. In the other: one.
    cy.client
        .send(ops, "seen where it lands")
        .await
        .expect("cy sends");
    page.message("seen where it lands").await;
    cy.client
        .send(lab, "over in the lab")
        .await
        .expect("cy sends");
    let call = page.notifications.expect("cy's message in #lab").await;
    assert_eq!(call.summary, "cy in #lab");
    assert!(
        call.body.contains("over in the lab"),
        "the preview: {:?}",
        call.body
    );
    assert!(
        page.notifications.try_next().is_none(),
        "one notification, not one for #ops too"
    );
    until(
        "the title counts one unread",
        super::support::UI_WAIT_SHORT,
        || async { page.driver.title().await.is_ok_and(|t| t == "(1) Tidings") },
    )
    .await;
    page.shot("notified").await;

    // A click on it opens #lab.
    page.notifications.invoke_action(call.id, "default").await;
    page.room_open(lab).await;
    page.message("over in the lab").await;
    until(
        "the title without a count",
        super::support::UI_WAIT_SHORT,
        || async { page.driver.title().await.is_ok_and(|t| t == "Tidings") },
    )
    .await;
    page.shot("opened").await;
}
