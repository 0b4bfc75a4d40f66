//! The Tidings desktop app: a thin Tauri shell.
//!
//! Wiring only. The client core ([`tidings_client::Client`]) does the talking, caching and
//! notifying; in local server mode the server library runs in-process (`host.rs`). This crate
//! turns client events into UI events (`view.rs`), UI calls into client calls (`commands.rs`),
//! and owns the window, the tray (`tray.rs`) and single-instance behaviour.
//!
//! Invariant: no protocol and no SQL here.

#[cfg(test)]
mod command_names;
mod commands;
#[cfg(test)]
mod contract;
mod error;
mod host;
mod tray;
mod view;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tauri::{AppHandle, Manager, RunEvent, WindowEvent};
use tidings_client::notify::{DesktopNotifier, Notifier};
use tidings_client::{Client, ClientEvent, ClientOptions};

use crate::host::{Host, HostInfo};
use crate::view::{OpenRoomEvent, UiEvent};

/// The app's state, shared by every command.
pub struct Desktop {
    pub client: Client,
    pub data_dir: PathBuf,
    host: Mutex<Option<Host>>,
    /// The uploads going on, by the UI's id for each, to cancel them.
    uploads: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl Desktop {
    pub fn uploads(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::AbortHandle>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn host_info(&self) -> Option<HostInfo> {
        self.host
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Host::info)
    }

    pub fn set_host(&self, host: Host) {
        *self.host.lock().unwrap_or_else(|p| p.into_inner()) = Some(host);
    }
}

/// The argument the autostart entry starts the app with: no window, only the tray.
pub const HIDDEN: &str = "--hidden";

/// Where the app keeps its data: `TIDINGS_APP_DATA` when set (tests), else the platform's app
/// data dir.
fn data_dir(app: &AppHandle) -> tauri::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TIDINGS_APP_DATA") {
        return Ok(PathBuf::from(dir));
    }
    app.path().app_data_dir()
}

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TIDINGS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            // A second launch: bring the running one forward instead.
            tray::show_main(app);
        }))
        .plugin(tauri_plugin_opener::init())
        // "Start Tidings when I log in": an XDG autostart entry that starts it in the tray.
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .app_name("Tidings")
                .args([HIDDEN])
                .build(),
        )
        .setup(|app| {
            let handle = app.handle().clone();
            let data = data_dir(&handle)?;
            std::fs::create_dir_all(&data)?;
            let clicked = handle.clone();
            let notifier: Arc<dyn Notifier> = Arc::new(DesktopNotifier::new(
                "Tidings",
                Some(Arc::new(move |room| {
                    tray::show_main(&clicked);
                    view::emit(&clicked, &UiEvent::OpenRoom(OpenRoomEvent { room }));
                })),
            ));
            // The hosted server first, so the client finds it when it connects.
            let host = tauri::async_runtime::block_on(Host::resume(&data))
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)?;
            let client = tauri::async_runtime::block_on(async {
                Client::open(
                    &data.join("client.db"),
                    ClientOptions {
                        device: "Tidings desktop".into(),
                        notifier: Some(notifier),
                        ..ClientOptions::default()
                    },
                )
            })
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)?;
            forward_events(&handle, &client);
            let hosting = host.as_ref().map(|host| host.address.clone());
            app.manage(Desktop {
                client,
                data_dir: data,
                host: Mutex::new(host),
                uploads: Mutex::new(HashMap::new()),
            });
            let items = tray::build(&handle, hosting.as_deref())?;
            app.manage(items);
            // Started at login (the autostart entry says `--hidden`): to the tray, no window.
            if std::env::args().any(|arg| arg == HIDDEN)
                && let Some(window) = handle.get_webview_window("main")
            {
                window.hide()?;
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            if let WindowEvent::CloseRequested { api, .. } = event {
                // Closing keeps Tidings in the tray; Quit is in the tray menu.
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::host_group,
            commands::join_server,
            commands::trust_certificate,
            commands::rooms,
            commands::history,
            commands::send,
            commands::outbox,
            commands::mark_read,
            commands::edit_message,
            commands::delete_message,
            commands::react,
            commands::typing,
            commands::set_draft,
            commands::draft,
            commands::set_focused_room,
            commands::create_room,
            commands::open_dm,
            commands::join_room,
            commands::directory,
            commands::users,
            commands::members,
            commands::search,
            commands::upload,
            commands::cancel_upload,
            commands::attachment,
            commands::invite,
            commands::me,
            commands::admin,
            commands::manage_member,
            commands::create_invite,
            commands::revoke_invite,
            commands::lock_now,
            commands::unlock,
            commands::sessions,
            commands::revoke,
            commands::set_room_level,
            commands::room_level,
            commands::set_dnd,
            commands::transport,
            commands::set_transport,
            commands::open_link,
            commands::autostart,
            commands::set_autostart,
            commands::quit,
        ])
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(err) => {
            eprintln!("tidings: cannot start: {err}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let RunEvent::Exit = event
            && let Some(desktop) = handle.try_state::<Desktop>()
        {
            desktop.client.shutdown();
        }
    });
}

/// Forwards every client event to the UI, and keeps the tray's unread count current.
fn forward_events(app: &AppHandle, client: &Client) {
    let mut events = client.events();
    let app = app.clone();
    let client = client.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(ui_event) = view::event(&event) {
                        view::emit(&app, &ui_event);
                    }
                    if matches!(
                        event,
                        ClientEvent::Rooms(_) | ClientEvent::Message(_) | ClientEvent::Read { .. }
                    ) {
                        tray::refresh_unread(&app, &client).await;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(n, "the UI fell behind the client's events");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}
