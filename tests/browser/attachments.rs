//! Files in the browser: an image and a text file chosen from the composer's picker upload with
//! their progress, go out with the message, and show as a thumbnail (which opens full size) and
//! a file to save — to the sender, and as data to a client-core member.

use fantoccini::Locator;
use fantoccini::key::Key;
use tidings_client::ClientEvent;
use tidings_tests::webdriver::testid;
use tidings_tests::{TestClient, TestServer, png};

use crate::support::{Browser, fresh, invite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_and_a_file_go_out_with_a_message_and_the_image_opens_full_size() {
    fresh("attachments");
    let server = TestServer::start().await;
    let ana = Browser::open("attachments", "ana", &server.url("/")).await;
    ana.register("ana", &invite(&server).await).await;
    let ops = ana.create_room("ops").await;
    let mut bob = TestClient::new(&server, "bob").await;
    bob.client.join_room(ops).await.unwrap();
    bob.online().await;

    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("harbour.png");
    std::fs::write(&photo, png(900, 700)).unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "bring maps").unwrap();
    ana.attach(&[&photo, &notes]).await;
    let chips = ana.text("uploads").await;
    assert!(
        chips.contains("harbour.png") && chips.contains("notes.txt"),
        "{chips}"
    );
    ana.shot("uploaded").await;
    ana.send("the harbour").await;

    // The sender sees the thumbnail (made by the server: 320 px wide) and the file.
    let thumbnail = format!("{} {}", testid("message"), testid("attachment-thumbnail"));
    assert_eq!(ana.image_width(&thumbnail).await, 320);
    let file = ana.text("attachment-file").await;
    assert!(
        file.contains("notes.txt") && file.contains("10 B"),
        "{file}"
    );
    assert!(
        ana.find("uploads")
            .await
            .attr("hidden")
            .await
            .unwrap()
            .is_some(),
        "the composer's uploads went with the message"
    );
    ana.shot("sent").await;

    // bob's client gets both, in the order chosen.
    let event = bob
        .until(
            "the message with files",
            |e| matches!(e, ClientEvent::Message(m) if m.body == "the harbour"),
        )
        .await;
    let ClientEvent::Message(message) = event else {
        unreachable!()
    };
    let names: Vec<&str> = message
        .attachments
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["harbour.png", "notes.txt"]);

    // A click opens the image full size; Escape closes it.
    ana.click("attachment-image").await;
    assert_eq!(ana.image_width(&testid("image-full")).await, 900);
    ana.shot("viewer").await;
    ana.find("image-viewer")
        .await
        .send_keys(&Key::Escape.to_string())
        .await
        .unwrap();
    crate::support::until(
        "the viewer closes",
        tidings_tests::webdriver::UI_WAIT,
        || async {
            ana.driver
                .find_all(Locator::Css(&testid("image-viewer")))
                .await
                .unwrap()
                .is_empty()
        },
    )
    .await;
}
