//! What people expect of a chat, on the real window: edit, react, reply and delete from a
//! message's toolbar, and search — answered by the server, opened in its room, and answered from
//! the app's own copy once the server is gone.

use fantoccini::Locator;
use fantoccini::elements::Element;
use tidings_client::ClientEvent;
use tidings_proto::v1::Invite;
use tidings_tests::TestServer;

use crate::support::{Window, second_user, testid};

/// The row of the message whose body is exactly `body`.
fn row_of(body: &str) -> String {
    format!(
        "//*[@data-testid='message'][.//*[@data-testid='message-body'][.={}]]",
        crate::support::literal(body)
    )
}

/// Points at `row` and clicks its toolbar's `button` (a data-testid, or a CSS selector).
async fn toolbar(window: &Window, row: &Element, css: &str) {
    window.hover(row).await;
    row.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("the toolbar's {css}"))
        .click()
        .await
        .unwrap_or_else(|_| panic!("clicking {css}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_react_reply_delete_and_search_online_and_offline() {
    let server = TestServer::start().await;
    let owner = server.owner().await;
    let ops = owner.create_room("ops").await.room.id;
    let for_ana: Invite = owner.post("/api/invites", &()).await;
    let for_bo: Invite = owner.post("/api/invites", &()).await;

    let window = Window::open("features").await;
    window
        .join_server(&server.url(""), "ana", &for_ana.code)
        .await;
    window.click("browse-rooms").await;
    window.click(&format!("directory-{ops}")).await;
    window.room_open(ops).await;
    let mut bo = second_user(&server.url(""), &for_bo.code, "bo").await;
    bo.client.join_room(ops).await.expect("bo joins #ops");
    bo.client.send(ops, "the deploy is at noon").await.unwrap();
    bo.client.send(ops, "lunch after?").await.unwrap();
    window.message("lunch after?").await;

    // Edit: Enter saves, and the row says it was edited.
    window.send("deploy checklist is ready").await;
    let mine = window
        .wait_for(
            Locator::XPath(&row_of("deploy checklist is ready")),
            "ana's message",
        )
        .await;
    toolbar(&window, &mine, &testid("message-edit")).await;
    let editor = window
        .wait_for(Locator::Css(&testid("edit-box")), "the editor")
        .await;
    editor.clear().await.unwrap();
    editor
        .send_keys("deploy checklist is ready, v2\u{E007}")
        .await
        .unwrap();
    let edited = "//*[@data-testid='message-body'][starts-with(., 'deploy checklist is ready, v2')]\
                  [.//*[@data-testid='message-edited']]";
    window
        .wait_for(Locator::XPath(edited), "the edited message")
        .await;

    // React to bo's message; bo's client hears of it.
    let noon = window
        .wait_for(
            Locator::XPath(&row_of("the deploy is at noon")),
            "bo's message",
        )
        .await;
    toolbar(
        &window,
        &noon,
        "[data-testid=\"react-option\"][data-emoji=\"🎉\"]",
    )
    .await;
    window
        .wait_for(
            Locator::XPath(
                "//*[@data-testid='reaction'][@data-emoji='🎉'][@aria-pressed='true'][contains(., '1')]",
            ),
            "ana's reaction",
        )
        .await;
    // A member deletes only their own messages: no Delete on bo's (an owner's toolbar has one).
    assert!(
        noon.find(Locator::Css(&testid("message-delete")))
            .await
            .is_err(),
        "Delete on someone else's message, for a member"
    );
    bo.until("ana's reaction", |e| {
        matches!(e, ClientEvent::Changed(m) if m.body == "the deploy is at noon" && m.reactions.len() == 1)
    })
    .await;

    // Reply to bo's question: the sent reply quotes it.
    let lunch = window
        .wait_for(Locator::XPath(&row_of("lunch after?")), "bo's question")
        .await;
    toolbar(&window, &lunch, &testid("message-reply")).await;
    window.send("yes, at 1").await;
    window
        .wait_for(
            Locator::XPath(&format!(
                "{}//*[@data-testid='quote'][contains(., 'lunch after?')]",
                row_of("yes, at 1")
            )),
            "the reply's quote",
        )
        .await;
    bo.until(
        "the reply",
        |e| matches!(e, ClientEvent::Message(m) if m.body == "yes, at 1" && m.reply_to.is_some()),
    )
    .await;

    // Delete the edited message: a placeholder stays.
    let mine = window
        .wait_for(
            Locator::XPath(&format!("//*[@data-testid='message'][.{edited}]")),
            "the edited row",
        )
        .await;
    toolbar(&window, &mine, &testid("message-delete")).await;
    window
        .wait_for(
            Locator::Css(&testid("message-deleted")),
            "the deleted placeholder",
        )
        .await;
    window.shot("changed").await;

    // Search from another room: bo's message is found (ana's deleted one is not) and opens in
    // #ops, shown.
    window.create_room("random").await;
    window.click("search-button").await;
    window.type_into("search-input", "deploy\u{E007}").await;
    let hit = window
        .wait_for(
            Locator::XPath(
                "//*[@data-testid='search-hit'][.//mark[.='deploy']][contains(., 'the deploy is at noon')]",
            ),
            "bo's message, found",
        )
        .await;
    window
        .wait_for(
            Locator::XPath("//*[@data-testid='search-status'][.='1 message found.']"),
            "one hit, the deleted message not among them",
        )
        .await;
    window.shot("search").await;
    hit.click().await.unwrap();
    window.room_open(ops).await;
    window
        .wait_for(
            Locator::XPath(&format!(
                "//*[@data-testid='message'][contains(@class, 'highlight')][.{}]",
                "//*[@data-testid='message-body'][.='the deploy is at noon']"
            )),
            "the hit, shown in its room",
        )
        .await;

    // Files: an image and a text file chosen from the picker go out with a message; the image
    // shows as its thumbnail (fetched by the app: the webview cannot ask the server) and opens
    // full size; bo's client gets both.
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("harbour.png");
    std::fs::write(&photo, tidings_tests::png(900, 700)).unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "bring maps").unwrap();
    window.attach(&[&photo, &notes]).await;
    window.send("the harbour").await;
    let thumbnail = format!("{} {}", testid("message"), testid("attachment-thumbnail"));
    assert_eq!(window.image_width(&thumbnail).await, 320);
    let file = window.find("attachment-file").await;
    assert_eq!(
        file.attr("download").await.unwrap().as_deref(),
        Some("notes.txt"),
        "saved under its name"
    );
    let event = bo
        .until(
            "the message with files",
            |e| matches!(e, ClientEvent::Message(m) if m.body == "the harbour"),
        )
        .await;
    let ClientEvent::Message(carried) = event else {
        unreachable!()
    };
    let names: Vec<&str> = carried
        .attachments
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["harbour.png", "notes.txt"]);
    window.shot("attachments").await;
    window.click("attachment-image").await;
    assert_eq!(window.image_width(&testid("image-full")).await, 900);
    window.shot("attachment-viewer").await;
    window.click("image-viewer").await;

    // The server goes away: the app searches its own copy, and says so.
    server.stop().await;
    window
        .wait_for(
            Locator::Css(&format!(
                "{}:not([data-state=\"online\"])",
                testid("connection")
            )),
            "the connection bar leaving online",
        )
        .await;
    window.click("search-button").await;
    let input = window.interactable("search-input").await;
    input.clear().await.unwrap();
    input.send_keys("lunch\u{E007}").await.unwrap();
    window
        .wait_for(
            Locator::XPath(
                "//*[@data-testid='search-status'][contains(., '1 message found')]\
                 [contains(., 'only the messages on this device')]",
            ),
            "an answer from the app's copy",
        )
        .await;
    window
        .wait_for(
            Locator::XPath("//*[@data-testid='search-hit'][.//mark[.='lunch']]"),
            "the cached hit",
        )
        .await;
    window.shot("search-offline").await;
}
