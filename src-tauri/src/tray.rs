//! The tray icon: the unread count, Open / Do not disturb / Quit, and — while this computer hosts
//! the group — a line that says so. Closing the window keeps the app here, so alerts keep coming
//! and a hosted group's server keeps serving; Quit while hosting asks first, in the window.

use std::sync::Mutex;

use tauri::menu::{CheckMenuItem, Menu, MenuItem};
use tauri::tray::{MouseButton, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Wry};
use tidings_client::Client;

use crate::Desktop;
use crate::view::{self, UiEvent};

const TRAY: &str = "tidings";

/// Menu items the app updates later.
pub struct TrayItems {
    dnd: Mutex<CheckMenuItem<Wry>>,
}

/// The tray's menu: the hosting line first when `hosting` (the address others join), then
/// Open, Do not disturb (checked as `dnd`) and Quit.
fn menu(
    app: &AppHandle,
    hosting: Option<&str>,
    dnd: bool,
) -> tauri::Result<(Menu<Wry>, CheckMenuItem<Wry>)> {
    let open = MenuItem::with_id(app, "open", "Open Tidings", true, None::<&str>)?;
    let dnd = CheckMenuItem::with_id(app, "dnd", "Do not disturb", true, dnd, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = match hosting {
        Some(address) => {
            let line = format!("Hosting your group at {address}");
            let hosting = MenuItem::with_id(app, "hosting", line, false, None::<&str>)?;
            Menu::with_items(app, &[&hosting, &open, &dnd, &quit])?
        }
        None => Menu::with_items(app, &[&open, &dnd, &quit])?,
    };
    Ok((menu, dnd))
}

pub fn build(app: &AppHandle, hosting: Option<&str>) -> tauri::Result<TrayItems> {
    let (menu, dnd) = menu(app, hosting, false)?;
    let mut builder = TrayIconBuilder::with_id(TRAY)
        .tooltip(tooltip(hosting.is_some(), 0))
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => show_main(app),
            "dnd" => {
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    let desktop = app.state::<Desktop>();
                    let on = !desktop.client.do_not_disturb().await.unwrap_or(false);
                    if desktop.client.set_do_not_disturb(on).await.is_ok() {
                        show_dnd(&app, on);
                        view::emit(&app, &UiEvent::Dnd(on));
                    }
                });
            }
            "quit" => quit(app),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                ..
            } = event
            {
                show_main(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)?;
    Ok(TrayItems {
        dnd: Mutex::new(dnd),
    })
}

/// Says in the tray that this computer hosts the group at `address` (others join there).
pub fn show_hosting(app: &AppHandle, address: &str) {
    let (Some(tray), Some(items)) = (tray(app), app.try_state::<TrayItems>()) else {
        return;
    };
    let mut dnd = items.dnd.lock().unwrap_or_else(|p| p.into_inner());
    let checked = dnd.is_checked().unwrap_or(false);
    match menu(app, Some(address), checked) {
        Ok((menu, item)) => {
            let _ = tray.set_menu(Some(menu));
            *dnd = item;
            let _ = tray.set_tooltip(Some(tooltip(true, 0)));
        }
        Err(err) => tracing::warn!(%err, "the tray's menu was not rebuilt"),
    }
}

/// Quit from the tray: at once, unless this computer hosts the group — then the window asks
/// first (the group's server stops with the app), and `commands::quit` ends it.
fn quit(app: &AppHandle) {
    let hosting = app
        .try_state::<Desktop>()
        .is_some_and(|desktop| desktop.host_info().is_some());
    if hosting {
        show_main(app);
        view::emit(app, &UiEvent::ConfirmQuit(()));
    } else {
        app.exit(0);
    }
}

fn tray(app: &AppHandle) -> Option<TrayIcon> {
    app.tray_by_id(TRAY)
}

fn tooltip(hosting: bool, unread: u64) -> String {
    let what = if hosting {
        "Tidings — hosting your group"
    } else {
        "Tidings"
    };
    if unread == 0 {
        what.to_owned()
    } else {
        format!("{what}: {unread} unread")
    }
}

/// Brings the main window forward.
pub fn show_main(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

pub fn show_dnd(app: &AppHandle, on: bool) {
    if let Some(items) = app.try_state::<TrayItems>() {
        let dnd = items.dnd.lock().unwrap_or_else(|p| p.into_inner());
        let _ = dnd.set_checked(on);
    }
}

/// Shows the total unread count on the tray icon.
pub async fn refresh_unread(app: &AppHandle, client: &Client) {
    let unread: u64 = client
        .rooms()
        .await
        .map(|rooms| rooms.iter().map(|r| r.unread).sum())
        .unwrap_or(0);
    let hosting = app
        .try_state::<Desktop>()
        .is_some_and(|desktop| desktop.host_info().is_some());
    if let Some(tray) = tray(app) {
        let title = (unread > 0).then(|| unread.to_string());
        let _ = tray.set_title(title);
        let _ = tray.set_tooltip(Some(tooltip(hosting, unread)));
    }
}
