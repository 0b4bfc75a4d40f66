//! With the WebSocket switched off on the server, the page climbs down to SSE + POST by itself;
//! then long-polling and iframe streaming, each pinned in turn from the settings, carry the chat
//! both ways, and nothing is lost or repeated across the moves.

use fantoccini::Locator;
use tidings_client::ClientEvent;
use tidings_proto::v1::HistoryPage;
use tidings_tests::webdriver::message_xpath_sent;
use tidings_tests::{TestClient, TestServer};

use crate::support::{Browser, fresh, invite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_websocket_the_page_chats_over_sse_long_polling_and_an_iframe() {
    fresh("transports");
    let server = TestServer::start_with(|config| config.transports.websocket = false).await;
    let page = Browser::open("transports", "ana", &server.url("/")).await;
    page.register("ana", &invite(&server).await).await;
    let ops = page.create_room("ops").await;
    let mut cy = TestClient::new(&server, "cy").await;
    cy.online().await;
    cy.client.join_room(ops).await.expect("cy joins");

    let mut expected = Vec::new();
    for (pin, label) in [
        (None, "Online · SSE"),
        (Some("long_polling"), "Online · long-polling"),
        (Some("iframe"), "Online · iframe streaming"),
    ] {
        if let Some(kind) = pin {
            page.click("settings-button").await;
            let select = page.interactable("transport").await;
            select
                .select_by_value(kind)
                .await
                .expect("pinning the transport");
            page.click("settings-close").await;
        }
        let xpath = format!(
            "//*[@data-testid='connection'][@data-state='online'][normalize-space(.)={}]",
            crate::support::literal(label)
        );
        page.wait_for(Locator::XPath(&xpath), label).await;

        let mine = format!("from the page over {label}");
        page.send(&mine).await;
        page.wait_for(
            Locator::XPath(&message_xpath_sent(&mine)),
            "the page's message, acked",
        )
        .await;
        cy.until(
            &mine,
            |e| matches!(e, ClientEvent::Message(m) if m.body == mine),
        )
        .await;
        let theirs = format!("from cy while the page is on {label}");
        cy.client.send(ops, &theirs).await.expect("cy sends");
        page.message(&theirs).await;
        page.shot(&label.replace([' ', '·'], "")).await;
        expected.push(mine);
        expected.push(theirs);
    }

    for body in &expected {
        assert_eq!(page.count_messages(body).await, 1, "{body} shown once");
    }
    let stored: HistoryPage = server
        .login("cy", tidings_tests::PASSWORD)
        .await
        .get(&format!("/api/rooms/{ops}/messages?limit=50"))
        .await;
    let bodies: Vec<&String> = stored.messages.iter().map(|m| &m.body).collect();
    assert_eq!(
        bodies,
        expected.iter().collect::<Vec<_>>(),
        "each stored once, in order"
    );
}
