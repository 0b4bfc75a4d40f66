//! Message text is text in the browser too: markup, a closing script tag and `javascript:`
//! links show as what was typed, and nothing runs.

use fantoccini::Locator;
use tidings_tests::{TestClient, TestServer};

use crate::support::{Browser, fresh, invite};

const BODIES: [&str; 3] = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(2)</script>",
    "javascript:alert(3) and [a link](javascript:alert(4))",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_markup_in_messages_shows_as_text() {
    fresh("markup");
    let server = TestServer::start().await;
    let page = Browser::open("markup", "ana", &server.url("/")).await;
    page.register("ana", &invite(&server).await).await;
    let ops = page.create_room("ops").await;
    let cy = TestClient::new(&server, "cy").await;
    cy.client.join_room(ops).await.expect("cy joins");
    for body in BODIES {
        cy.client.send(ops, body).await.expect("cy sends");
    }
    for body in BODIES {
        let shown = page.message(body).await;
        assert_eq!(shown.text().await.unwrap(), body, "shown as typed");
    }
    let images = page
        .driver
        .find_all(Locator::Css(
            "[data-testid=\"timeline\"] img, [data-testid=\"timeline\"] script",
        ))
        .await
        .unwrap();
    assert!(images.is_empty(), "no element made from a message");
    let scripted = page
        .driver
        .find_all(Locator::Css("a[href^=\"javascript:\" i]"))
        .await
        .unwrap();
    assert!(scripted.is_empty(), "no javascript: link");
    assert!(page.driver.get_alert_text().await.is_err(), "nothing ran");
    page.shot("literal").await;
}
