//! Registering with an invite, chatting with another browser and a client-core user in a room
//! and a DM, a reload that keeps the session and the history, and a message typed while the
//! server is away that is sent once when it is back.

use fantoccini::Locator;
use tidings_client::ClientEvent;
use tidings_proto::v1::HistoryPage;
use tidings_tests::webdriver::{message_xpath_pending, message_xpath_sent};
use tidings_tests::{TestClient, TestServer};

use crate::support::{Browser, fresh, invite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_and_a_client_chat_and_nothing_is_lost_or_sent_twice() {
    fresh("chat");
    let server = TestServer::start().await;
    let url = server.url("/");

    let ana = Browser::open("chat", "ana", &url).await;
    ana.find("login").await;
    ana.shot("login").await;
    ana.register("ana", &invite(&server).await).await;
    // No room is open yet: there is nowhere to send, so nothing to write in or send with.
    for part in ["composer", "composer-send"] {
        let element = ana.find(part).await;
        assert!(
            !element.is_enabled().await.unwrap(),
            "{part} is disabled until a room is open"
        );
    }
    let ops = ana.create_room("ops").await;
    assert!(ana.find("composer-send").await.is_enabled().await.unwrap());
    // The room list filters by name, case and '#' aside; Escape shows every room again.
    let ops_entry = format!("room-{ops}");
    let shown = async |filter: &str| {
        ana.type_into("room-filter", filter).await;
        ana.find(&ops_entry).await.is_displayed().await.unwrap()
    };
    assert!(!shown("zz").await, "'zz' hides #ops");
    assert!(ana.text("room-list").await.contains("No rooms match."));
    ana.type_into("room-filter", "\u{e00c}").await; // Escape
    assert!(shown("#OP").await, "'#OP' shows #ops");
    ana.type_into("room-filter", "\u{e00c}").await;

    // bo follows an invite link: the code is filled in for him.
    let code = invite(&server).await;
    let bo = Browser::open("chat", "bo", &format!("{url}#invite={code}")).await;
    assert_eq!(bo.text("join-submit").await, "Create account");
    let field = bo.find("join-invite").await;
    assert_eq!(
        field.prop("value").await.unwrap().as_deref(),
        Some(code.as_str())
    );
    bo.type_into("join-name", "bo").await;
    bo.type_into("join-password", tidings_tests::PASSWORD).await;
    bo.click("join-submit").await;
    bo.online().await;
    assert!(
        !bo.driver
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains(&code),
        "the code leaves the address bar once used"
    );
    bo.click("browse-rooms").await;
    bo.click(&format!("directory-{ops}")).await;
    bo.room_open(ops).await;

    let mut cy = TestClient::new(&server, "cy").await;
    cy.online().await;
    cy.client.join_room(ops).await.expect("cy joins #ops");

    // A room: each hears the others.
    ana.send("hello from ana").await;
    bo.message("hello from ana").await;
    cy.until(
        "ana's message",
        |e| matches!(e, ClientEvent::Message(m) if m.body == "hello from ana"),
    )
    .await;
    cy.client
        .send(ops, "hello from cy")
        .await
        .expect("cy sends");
    ana.message("hello from cy").await;
    bo.message("hello from cy").await;
    bo.send("hello from bo").await;
    ana.message("hello from bo").await;

    // A DM, opened by bo from the sidebar.
    let ana_id = server.login("ana", tidings_tests::PASSWORD).await.user.id;
    bo.click("new-dm").await;
    bo.click(&format!("dm-user-{ana_id}")).await;
    bo.send("just between us").await;
    let dm = server
        .login("bo", tidings_tests::PASSWORD)
        .await
        .dm("ana")
        .await
        .room
        .id;
    ana.click(&format!("room-{dm}")).await;
    ana.room_open(dm).await;
    ana.message("just between us").await;
    ana.shot("dm").await;

    // A reload keeps the session (no login screen) and the history.
    ana.driver.refresh().await.expect("reload");
    ana.online().await;
    ana.room_open(dm).await;
    ana.message("just between us").await;
    assert!(
        ana.driver
            .find_all(Locator::Css("[data-testid=\"login\"]"))
            .await
            .unwrap()
            .is_empty(),
        "the reloaded page is still logged in"
    );
    ana.click(&format!("room-{ops}")).await;
    ana.message("hello from cy").await;
    ana.message("hello from bo").await;
    ana.shot("reloaded").await;

    // Typing shows under the room; settings list this browser's session, and the notification
    // permission the browser gave.
    cy.client.typing(ops);
    ana.wait_for(
        Locator::XPath("//*[@data-testid='typing-indicator'][contains(., 'cy')]"),
        "cy typing",
    )
    .await;
    ana.click("settings-button").await;
    ana.wait_for(
        Locator::XPath("//*[@data-testid='session-row'][@data-current='true']"),
        "this browser's session",
    )
    .await;
    assert_eq!(
        ana.text("alerts-permission").await,
        "This browser shows notifications."
    );
    ana.shot("settings").await;
    ana.click("settings-close").await;
    ana.room_open(ops).await;

    // The server goes away; a message typed meanwhile waits in the outbox (IndexedDB)...
    let (dir, config, addr) = server.stop().await;
    ana.attr_is("connection", "data-state", "offline").await;
    ana.send("typed while offline").await;
    ana.wait_for(
        Locator::XPath(&message_xpath_pending("typed while offline")),
        "the pending row",
    )
    .await;
    let kept = ana
        .run(
            "const done = arguments[arguments.length - 1];\
             const open = indexedDB.open('tidings');\
             open.onsuccess = () => {\
               const get = open.result.transaction('outbox').objectStore('outbox').getAll();\
               get.onsuccess = () => done(get.result.map((r) => r.body));\
             };",
        )
        .await;
    assert_eq!(
        kept,
        serde_json::json!(["typed while offline"]),
        "the outbox is kept in IndexedDB"
    );
    ana.shot("offline").await;

    // ...and is sent once the server is back: once, however many times it was offered.
    let server = TestServer::serve_again(dir, config, addr).await;
    ana.online().await;
    cy.until(
        "the offline message",
        |e| matches!(e, ClientEvent::Message(m) if m.body == "typed while offline"),
    )
    .await;
    ana.wait_for(
        Locator::XPath(&message_xpath_sent("typed while offline")),
        "the sent row",
    )
    .await;
    bo.click(&format!("room-{ops}")).await;
    bo.room_open(ops).await;
    bo.message("typed while offline").await;
    let page = stored(&server, ops).await;
    let bodies: Vec<&str> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "hello from ana",
            "hello from cy",
            "hello from bo",
            "typed while offline"
        ],
        "every message stored once, in order"
    );
    assert_eq!(ana.count_messages("typed while offline").await, 1);
    ana.shot("back-online").await;

    // Edit, react and delete, from the message's toolbar; the other browser sees each change.
    let mine = Locator::XPath(
        "//*[@data-testid='message'][.//*[@data-testid='message-body'][.='typed while offline']]",
    );
    let row = ana.wait_for(mine, "ana's message").await;
    ana.hover(&row).await;
    row.find(Locator::Css("[data-testid=\"message-edit\"]"))
        .await
        .expect("the Edit button")
        .click()
        .await
        .expect("clicking Edit");
    let editor = ana
        .wait_for(Locator::Css("[data-testid=\"edit-box\"]"), "the editor")
        .await;
    editor.clear().await.expect("clearing the editor");
    editor
        .send_keys("typed while offline, then fixed\u{E007}")
        .await
        .expect("typing the edit");
    let edited = "//*[@data-testid='message-body'][starts-with(., 'typed while offline, then fixed')]\
                  [.//*[@data-testid='message-edited']]";
    ana.wait_for(Locator::XPath(edited), "the edited message")
        .await;
    bo.wait_for(Locator::XPath(edited), "the edit, in the other browser")
        .await;

    let row = ana
        .wait_for(
            Locator::XPath(&format!("//*[@data-testid='message'][.{edited}]")),
            "the edited row",
        )
        .await;
    ana.hover(&row).await;
    row.find(Locator::Css(
        "[data-testid=\"react-option\"][data-emoji=\"🎉\"]",
    ))
    .await
    .expect("the 🎉 option")
    .click()
    .await
    .expect("reacting");
    let reaction = "//*[@data-testid='reaction'][@data-emoji='🎉'][contains(., '1')]";
    ana.wait_for(
        Locator::XPath(&format!("{reaction}[@aria-pressed='true']")),
        "ana's own reaction",
    )
    .await;
    bo.wait_for(
        Locator::XPath(&format!("{reaction}[@aria-pressed='false']")),
        "the reaction, in the other browser",
    )
    .await;
    ana.shot("edited-and-reacted").await;

    let row = ana
        .wait_for(
            Locator::XPath(&format!("//*[@data-testid='message'][.{edited}]")),
            "the edited row",
        )
        .await;
    ana.hover(&row).await;
    row.find(Locator::Css("[data-testid=\"message-delete\"]"))
        .await
        .expect("the Delete button")
        .click()
        .await
        .expect("deleting");
    for page in [&ana, &bo] {
        page.wait_for(
            Locator::Css("[data-testid=\"message-deleted\"]"),
            "the deleted placeholder",
        )
        .await;
        assert_eq!(page.count_messages("typed while offline").await, 0);
    }
    let page = stored(&server, ops).await;
    let last = page
        .messages
        .last()
        .expect("the deleted message stays as a placeholder");
    assert_eq!(last.body, "", "the body is gone from the server");
    assert!(last.deleted_at.is_some() && last.reactions.is_empty());
    ana.shot("deleted").await;

    // A reply from the toolbar: the composer says what it answers, both browsers show the
    // quote, and a click on the quote shows the message it answers.
    let bos = Locator::XPath(
        "//*[@data-testid='message'][.//*[@data-testid='message-body'][.='hello from bo']]",
    );
    let row = ana.wait_for(bos, "bo's message").await;
    ana.hover(&row).await;
    row.find(Locator::Css("[data-testid=\"message-reply\"]"))
        .await
        .expect("the Reply button")
        .click()
        .await
        .expect("clicking Reply");
    ana.wait_for(
        Locator::XPath(
            "//*[@data-testid='reply-banner'][not(@hidden)][contains(., 'Replying to bo: hello from bo')]",
        ),
        "the reply banner",
    )
    .await;
    ana.send("on it").await;
    let quoted = "//*[@data-testid='message'][.//*[@data-testid='message-body'][.='on it']]\
                  //*[@data-testid='quote'][contains(., 'hello from bo')]";
    let quote = ana.wait_for(Locator::XPath(quoted), "the quote").await;
    bo.wait_for(Locator::XPath(quoted), "the quote, in the other browser")
        .await;
    quote.click().await.expect("clicking the quote");
    ana.wait_for(
        Locator::XPath(
            "//*[@data-testid='message'][contains(@class, 'highlight')]\
             [.//*[@data-testid='message-body'][.='hello from bo']]",
        ),
        "the answered message, shown",
    )
    .await;
    ana.shot("replied").await;
    let page = stored(&server, ops).await;
    let reply = page.messages.last().expect("the reply");
    let answered = reply.reply_to.as_ref().expect("a quote");
    assert_eq!(
        (
            reply.body.as_str(),
            answered.author.name.as_str(),
            answered.preview.as_str()
        ),
        ("on it", "bo", "hello from bo")
    );

    // `@` and the start of a name list the room's members; Tab puts the name in.
    ana.type_into("composer", "thanks @b").await;
    ana.wait_for(
        Locator::Css("[data-testid=\"mention-option\"][data-name=\"bo\"]"),
        "bo in the completion list",
    )
    .await;
    ana.type_into("composer", "\u{E004}").await;
    ana.type_into("composer", "for the reply\u{E007}").await;
    ana.message("thanks @bo for the reply").await;
    let bo_id = server.login("bo", tidings_tests::PASSWORD).await.user.id;
    let page = stored(&server, ops).await;
    let thanks = page.messages.last().expect("the completed message");
    assert_eq!(thanks.body, "thanks @bo for the reply");
    assert!(
        thanks.mentions.contains(&bo_id),
        "the completed name mentions bo"
    );

    // Away from #ops, bo gets two messages there; opening it shows the "New" line above them.
    bo.click(&format!("room-{dm}")).await;
    bo.room_open(dm).await;
    cy.client.send(ops, "while you were away").await.unwrap();
    cy.client.send(ops, "and this too").await.unwrap();
    bo.attr_is(&format!("room-{ops}"), "data-unread", "2").await;
    bo.click(&format!("room-{ops}")).await;
    bo.room_open(ops).await;
    bo.wait_for(
        Locator::XPath(
            "//*[@data-testid='message'][.//*[@data-testid='unread-divider']]\
             [.//*[@data-testid='message-body'][.='while you were away']]",
        ),
        "the New line above the first unread message",
    )
    .await;
    let dividers = bo
        .driver
        .find_all(Locator::Css("[data-testid=\"unread-divider\"]"))
        .await
        .unwrap();
    assert_eq!(dividers.len(), 1, "one New line");
    bo.shot("unread-divider").await;

    // Search: from the DM, bo finds a word of #ops, marked, and a click opens it there.
    bo.click(&format!("room-{dm}")).await;
    bo.room_open(dm).await;
    bo.click("search-button").await;
    bo.type_into("search-input", "HELLO bo\u{E007}").await;
    let hit = bo
        .wait_for(
            Locator::XPath(
                "//*[@data-testid='search-hit'][.//mark[.='hello']]\
                 [contains(., '#ops')][contains(., 'hello from bo')]",
            ),
            "the hit in #ops, the word marked",
        )
        .await;
    bo.wait_for(
        Locator::XPath("//*[@data-testid='search-status'][contains(., '1 message found')]"),
        "the count of hits",
    )
    .await;
    bo.shot("search").await;
    hit.click().await.expect("clicking the hit");
    bo.room_open(ops).await;
    bo.wait_for(
        Locator::XPath(
            "//*[@data-testid='message'][contains(@class, 'highlight')]\
             [.//*[@data-testid='message-body'][.='hello from bo']]",
        ),
        "the message found, shown in its room",
    )
    .await;
}

/// What the server holds of `room` (its newest 50 messages), as cy, a member, reads it.
async fn stored(server: &TestServer, room: i64) -> HistoryPage {
    server
        .login("cy", tidings_tests::PASSWORD)
        .await
        .get(&format!("/api/rooms/{room}/messages?limit=50"))
        .await
}
