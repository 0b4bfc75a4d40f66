//! Local server mode, finished: hosting on the network shows the address others join at and a
//! QR code of the invite link; the tray says the app is hosting, and it keeps serving with the
//! window closed; a second launch brings the window back; Quit asks first; the app can start at
//! login.

use std::time::{Duration, Instant};

use base64::Engine;
use fantoccini::Locator;
use tidings_tests::tray::MenuEntry;
use tidings_tests::{PASSWORD, http_client};

use crate::support::{UI_WAIT, Window, XWindow, testid};

/// What the QR code the window draws (`data-testid="invite-qr"`) says, read back from its pixels.
async fn qr_text(window: &Window) -> String {
    window.find("invite-qr").await;
    let url = window
        .driver
        .execute(
            "return document.querySelector('[data-testid=\"invite-qr\"]').toDataURL('image/png');",
            Vec::new(),
        )
        .await
        .expect("the canvas's pixels");
    let url = url.as_str().expect("a data URL");
    let png = base64::engine::general_purpose::STANDARD
        .decode(url.trim_start_matches("data:image/png;base64,"))
        .expect("base64");
    let image = image::load_from_memory(&png).expect("a PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the canvas");
    grids[0].decode().expect("a readable QR code").1
}

/// Whether the hosted server at 127.0.0.1:`port` answers.
async fn serving(port: u16) -> bool {
    http_client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_ok_and(|response| response.status() == 200)
}

/// Waits (at most [`UI_WAIT`]) until nothing has `data-testid` `id`.
async fn gone(window: &Window, id: &str) {
    let deadline = Instant::now() + UI_WAIT;
    while !window
        .driver
        .find_all(Locator::Css(&testid(id)))
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "{id} is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosting_on_the_network_shows_where_to_join_keeps_serving_in_the_tray_and_asks_before_quitting()
 {
    let window = Window::open("hosting").await;
    window.type_into("owner-name", "ana").await;
    window.type_into("owner-password", PASSWORD).await;
    window.click("lan").await;
    window.click("host-submit").await;

    // The address others use: this computer's own on the network, not loopback.
    let address = window.text("host-address").await;
    let url = url::Url::parse(&address).expect("an address");
    let host = url.host_str().expect("a host").to_owned();
    let port = url.port().expect("a port");
    let own: Vec<String> = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip().to_string())
        .collect();
    assert!(
        own.contains(&host) || (own.is_empty() && host != "127.0.0.1"),
        "{host} is none of this computer's addresses {own:?}"
    );
    // The invite link, and a QR code that says exactly it.
    let invite = window.text("invite-code").await;
    let link = window.text("invite-link").await;
    assert_eq!(link, format!("{address}/#invite={invite}"));
    assert_eq!(qr_text(&window).await, link);
    window.shot("hosted").await;
    window.click("host-continue").await;
    window.online().await;

    // The tray says the app hosts the group, and where.
    let menu = window.tray.menu().await;
    let labels: Vec<&str> = menu.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            format!("Hosting your group at {address}").as_str(),
            "Open Tidings",
            "Do not disturb",
            "Quit"
        ],
        "{menu:?}"
    );
    assert!(!menu[0].enabled, "the hosting line is not a command");
    assert_eq!(
        menu.iter()
            .find(|e| e.label == "Do not disturb")
            .map(|e: &MenuEntry| e.checked),
        Some(Some(false))
    );

    // Closing the window keeps the app, and the group's server, running.
    let x = XWindow::find(&window.display()).await;
    assert!(x.shown());
    x.close();
    x.until_shown(false).await;
    assert!(serving(port).await, "the server stopped with the window");

    // Launching it again brings the running one forward; the second launch ends.
    let mut second = window.launch_again();
    x.until_shown(true).await;
    let deadline = Instant::now() + UI_WAIT;
    let ended = loop {
        if let Some(status) = second.try_wait().expect("the second launch") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = second.kill();
            panic!("the second launch did not end: it should hand over to the first");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(ended.success(), "the second launch ended with {ended}");
    assert!(serving(port).await);

    // The tray's Open does the same.
    x.close();
    x.until_shown(false).await;
    window.tray.click("Open Tidings").await;
    x.until_shown(true).await;

    // Quit while hosting asks first; keeping it changes nothing.
    x.close();
    x.until_shown(false).await;
    window.tray.click("Quit").await;
    x.until_shown(true).await;
    window.interactable("quit-dialog").await;
    window.shot("quit-asked").await;
    window.click("quit-cancel").await;
    gone(&window, "quit-dialog").await;
    assert!(
        serving(port).await,
        "the server stopped though the user kept it"
    );

    // Quit for real: the app ends, and the group's server with it.
    window.tray.click("Quit").await;
    let confirm = window.interactable("quit-confirm").await;
    // The app may end before WebDriver has answered the click: what counts is below.
    let _ = confirm.click().await;
    let deadline = Instant::now() + UI_WAIT;
    while serving(port).await {
        assert!(Instant::now() < deadline, "the server outlived Quit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_at_login_is_an_xdg_autostart_entry_asking_for_the_tray_only() {
    let window = Window::open("autostart").await;
    window.host_group("ana").await;
    window.click("settings-button").await;
    let toggle = window.interactable("autostart-toggle").await;
    assert!(!toggle.is_selected().await.unwrap(), "off by default");
    let entry = window.home.join(".config/autostart/Tidings.desktop");
    assert!(!entry.exists());

    toggle.click().await.unwrap();
    let deadline = Instant::now() + UI_WAIT;
    while !entry.exists() {
        assert!(Instant::now() < deadline, "no autostart entry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&entry).unwrap();
    let exec = text
        .lines()
        .find_map(|line| line.strip_prefix("Exec="))
        .unwrap_or_else(|| panic!("no Exec line: {text}"));
    assert!(
        exec.contains(env!("CARGO_BIN_EXE_tidings-desktop")) && exec.ends_with("--hidden"),
        "{exec}"
    );
    window.shot("autostart-on").await;

    // The panel, opened again, shows it on; switched off, the entry goes.
    window.click("settings-close").await;
    window.click("settings-button").await;
    let toggle = window.interactable("autostart-toggle").await;
    let deadline = Instant::now() + UI_WAIT;
    while !toggle.is_selected().await.unwrap() {
        assert!(Instant::now() < deadline, "the setting does not show it on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    toggle.click().await.unwrap();
    let deadline = Instant::now() + UI_WAIT;
    while entry.exists() {
        assert!(Instant::now() < deadline, "the autostart entry stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
