//! The tray icon: the unread count, Open / Do not disturb / Quit. Closing the window keeps the app
//! here, so alerts keep coming.

use tauri::menu::{CheckMenuItem, Menu, MenuItem};
use tauri::tray::{MouseButton, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Wry};
use tidings_client::Client;

use crate::Desktop;
use crate::view::{self, UiEvent};

const TRAY: &str = "tidings";

/// Menu items the app updates later.
pub struct TrayItems {
    dnd: CheckMenuItem<Wry>,
}

pub fn build(app: &AppHandle) -> tauri::Result<TrayItems> {
    let open = MenuItem::with_id(app, "open", "Open Tidings", true, None::<&str>)?;
    let dnd = CheckMenuItem::with_id(app, "dnd", "Do not disturb", true, false, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &dnd, &quit])?;
    let mut builder = TrayIconBuilder::with_id(TRAY)
        .tooltip("Tidings")
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
            "quit" => app.exit(0),
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
    Ok(TrayItems { dnd })
}

fn tray(app: &AppHandle) -> Option<TrayIcon> {
    app.tray_by_id(TRAY)
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
        let _ = items.dnd.set_checked(on);
    }
}

/// Shows the total unread count on the tray icon.
pub async fn refresh_unread(app: &AppHandle, client: &Client) {
    let unread: u64 = client
        .rooms()
        .await
        .map(|rooms| rooms.iter().map(|r| r.unread).sum())
        .unwrap_or(0);
    if let Some(tray) = tray(app) {
        let (title, tooltip) = if unread == 0 {
            (None, "Tidings".to_owned())
        } else {
            (
                Some(unread.to_string()),
                format!("Tidings: {unread} unread"),
            )
        };
        let _ = tray.set_title(title);
        let _ = tray.set_tooltip(Some(tooltip));
    }
}
