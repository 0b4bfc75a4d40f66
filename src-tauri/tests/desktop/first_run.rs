//! First run: hosting a group from the window, and a second user joining it with the invite the
//! window shows.

use fantoccini::Locator;

use crate::support::{Window, second_user, testid};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosting_logs_the_owner_in_and_a_second_user_joins_with_the_shown_invite() {
    let window = Window::open("first_run").await;
    window.shot("setup").await;

    let hosted = window.host_group("ana").await;
    // Not on the network: only this computer can reach the group.
    assert!(
        hosted.address.starts_with("http://127.0.0.1:"),
        "a loopback address, got {:?}",
        hosted.address
    );
    assert!(!hosted.invite.trim().is_empty(), "an invite code is shown");

    // The chat, not the first-run screen, and logged in as the owner.
    let composer = window.find("composer").await;
    assert!(composer.is_displayed().await.unwrap(), "the chat is shown");
    // The new group has somewhere to talk: #general is listed and opened, ready to write in.
    window
        .wait_for(
            Locator::XPath("//*[@data-testid='room-list']//button[contains(., 'general')]"),
            "#general in the room list",
        )
        .await;
    let send = window.interactable("composer-send").await;
    assert_eq!(send.text().await.unwrap(), "Send");
    let placeholder = window
        .interactable("composer")
        .await
        .attr("placeholder")
        .await
        .unwrap();
    assert_eq!(placeholder.as_deref(), Some("Message #general"));
    let setup = window
        .driver
        .find_all(Locator::Css(&testid("owner-name")))
        .await
        .unwrap();
    assert!(setup.is_empty(), "the first-run form is gone");
    let sidebar = window
        .driver
        .find(Locator::Css(".sidebar .me"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sidebar.contains("ana"),
        "the sidebar names the owner: {sidebar:?}"
    );
    window.shot("online").await;

    // The hosted server serves the web app too, so others can join from a browser.
    let page = tidings_tests::http_client()
        .get(format!("{}/", hosted.address))
        .send()
        .await
        .expect("the hosted server answers");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "the web app's page"
    );
    assert!(
        page.text().await.unwrap().contains("/assets/"),
        "the built app, not the page that says it is missing"
    );

    // Someone else joins with what the window showed.
    let bo = second_user(&hosted.address, &hosted.invite, "bo").await;
    let me = bo.client.account().expect("bo's account").user;
    // bo is in #general from the start, with the owner.
    let bos_rooms = bo.client.refresh_rooms().await.expect("bo's rooms");
    assert!(
        bos_rooms
            .iter()
            .any(|r| r.room.name.as_deref() == Some("general")),
        "bo is in #general: {bos_rooms:?}"
    );

    // The owner's window knows the new member.
    window.click("new-dm").await;
    let pick = window.find(&format!("dm-user-{}", me.id)).await;
    assert_eq!(pick.text().await.unwrap(), "bo");
    window.shot("new-member").await;
}
