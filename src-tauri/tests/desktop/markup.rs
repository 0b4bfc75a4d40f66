//! A message body is text, never markup.

use fantoccini::Locator;

use crate::support::{Window, second_user};

const BODY: &str = "<img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_body_is_shown_as_its_literal_text() {
    let window = Window::open("markup").await;
    let hosted = window.host_group("ana").await;
    let bo = second_user(&hosted.address, &hosted.invite, "bo").await;
    let ops = window.create_room("ops").await;
    bo.client.join_room(ops).await.expect("bo joins #ops");

    // From someone else, over the wire; and typed in the window.
    bo.client.send(ops, BODY).await.expect("bo sends");
    let theirs = window.message(BODY).await;
    window.send(BODY).await;
    window
        .wait_for(
            Locator::XPath(&format!(
                "(//*[@data-testid='timeline']//*[@data-testid='message']\
                 //*[@data-testid='message-body'][.={}])[2]",
                crate::support::literal(BODY)
            )),
            "the owner's copy, sent",
        )
        .await;

    assert_eq!(theirs.text().await.unwrap(), BODY);
    assert_eq!(window.count_messages(BODY).await, 2);
    let images = window
        .driver
        .find_all(Locator::Css("[data-testid=\"timeline\"] img"))
        .await
        .unwrap();
    assert!(images.is_empty(), "no <img> in the timeline");
    let inner = theirs.html(true).await.unwrap();
    assert_eq!(
        inner, "&lt;img src=x onerror=alert(1)&gt;",
        "one escaped text node"
    );
    // And nothing ran.
    assert!(
        window.driver.get_alert_text().await.is_err(),
        "no alert was opened"
    );
    window.shot("literal").await;
}
