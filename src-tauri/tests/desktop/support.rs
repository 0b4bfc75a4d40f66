//! The window harness: the real app, on a virtual display of its own, driven over WebDriver.
//!
//! [`Window::open`] starts, for one test, an `Xvfb` display, a private D-Bus session bus with a
//! recording notification service on it, and `tauri-driver` (a WebDriver front for
//! `WebKitWebDriver`), all with a fresh home and app data dir; then a WebDriver session, which
//! launches the app. Dropping the [`Window`] kills every process it started, and their
//! descendants (the app and its WebKit processes), by PID. The page itself is driven through
//! the shared [`Page`] (`tidings_tests::webdriver`), as the browser tests drive theirs.
//!
//! tauri-driver listens on fixed ports, so windows cannot be open in parallel: [`Window::open`]
//! waits for the previous test's window to be gone first.

use std::net::TcpListener;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use fantoccini::ClientBuilder;
use serde_json::json;
use tempfile::TempDir;
use tidings_client::notify::RecordingNotifier;
use tidings_proto::v1::{LoginRequest, LoginResponse};
use tidings_tests::dbus::{NotificationService, PrivateBus};
use tidings_tests::tray::TrayHost;
use tidings_tests::webdriver::{
    Page, Process, artifacts_dir, clear_shots, comm, descendants, pss_kib, set_private, start_xvfb,
    wait_for_port,
};
use tidings_tests::{PASSWORD, TestClient, client_options, http_client};
use tokio::sync::{Mutex, MutexGuard};

pub use tidings_tests::webdriver::{
    UI_WAIT, literal, message_xpath_pending, message_xpath_sent, not_interactable, report, testid,
};

/// The ports tauri-driver and the WebKitWebDriver behind it listen on.
const DRIVER_PORT: u16 = 4444;
const NATIVE_PORT: u16 = 4445;

/// One window at a time (see the module docs). tokio's mutex, unlike std's, can be held across
/// `.await` and works across the runtimes of separate `#[tokio::test]`s.
static SERIAL: LazyLock<Mutex<()>> = LazyLock::new(|| Mutex::new(()));

/// The app binary under test.
fn app_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tidings-desktop"))
}

/// The workspace's root (this package is one level below it).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the package sits in the workspace")
        .to_path_buf()
}

/// A test's window of the app, and everything around it.
pub struct Window {
    page: Page,
    /// The notifications the app raised, as the desktop's notification service saw them.
    pub notifications: NotificationService,
    /// The desktop's panel, where the app's tray icon registers: its menu, and clicks on it.
    pub tray: TrayHost,
    /// The environment the app was launched with (display, bus, home, data dir), for launching
    /// it again.
    pub env: Vec<(String, std::ffi::OsString)>,
    /// The home dir the app was given.
    pub home: PathBuf,
    /// From asking for the WebDriver session (which launches the app) to the first-run form
    /// taking input.
    pub startup: Duration,
    // Dropped in declaration order: the recorder leaves the bus, then tauri-driver's guard kills
    // WebKitWebDriver, the app and its WebKit processes; then the display, the bus, the dirs,
    // and last the turn of the next test.
    tauri_driver: Process,
    _xvfb: Process,
    _bus: PrivateBus,
    _dirs: TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Window {
    /// Starts the app on its first run (an empty data dir) for test `test`, and waits until its
    /// first-run form takes input.
    pub async fn open(test: &'static str) -> Window {
        let serial = SERIAL.lock().await;
        let tauri_driver_bin = workspace_root().join(".tools/bin/tauri-driver");
        assert!(
            tauri_driver_bin.is_file(),
            "{} is missing: run `scripts/deps.sh --test` (it installs tauri-driver there)",
            tauri_driver_bin.display()
        );
        for port in [DRIVER_PORT, NATIVE_PORT] {
            // Binding succeeds only when nothing (a driver left over from a killed run, say)
            // holds the port; the listener is closed again at once.
            assert!(
                TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "port {port} is taken: is another tauri-driver running?"
            );
        }

        let artifacts = artifacts_dir();
        clear_shots(test);
        let dirs = tempfile::tempdir().expect("temp dir");
        let home = dirs.path().join("home");
        let runtime = dirs.path().join("runtime");
        let data = dirs.path().join("app-data");
        for dir in [&home, &runtime, &data] {
            std::fs::create_dir_all(dir).expect("creating the test's dirs");
        }
        set_private(&runtime);

        let (xvfb, display) = start_xvfb(&artifacts.join(format!("{test}-xvfb.log")));
        // The recorder owns the notification service's name before the app can look for one.
        let bus = PrivateBus::start();
        let notifications = NotificationService::start(&bus).await;
        // The panel is there first too, so the tray icon registers with it.
        let tray = TrayHost::start(&bus).await;

        let env: Vec<(String, std::ffi::OsString)> = [
            ("PATH", std::env::var_os("PATH").unwrap_or_default()),
            ("LANG", "C.UTF-8".into()),
            ("HOME", home.clone().into()),
            ("XDG_CONFIG_HOME", home.join(".config").into()),
            ("XDG_DATA_HOME", home.join(".local/share").into()),
            ("XDG_CACHE_HOME", home.join(".cache").into()),
            ("XDG_STATE_HOME", home.join(".local/state").into()),
            ("XDG_RUNTIME_DIR", runtime.clone().into()),
            ("DISPLAY", display.clone().into()),
            ("GDK_BACKEND", "x11".into()),
            ("DBUS_SESSION_BUS_ADDRESS", bus.address().into()),
            // No accessibility bus: it would be started on the private bus and outlive it.
            ("NO_AT_BRIDGE", "1".into()),
            ("TIDINGS_APP_DATA", data.clone().into()),
            ("TIDINGS_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let driver_log = artifacts.join(format!("{test}.log"));
        let log_file = std::fs::File::create(&driver_log).expect("creating the driver log");
        let child = Command::new(&tauri_driver_bin)
            .args([
                "--port",
                &DRIVER_PORT.to_string(),
                "--native-port",
                &NATIVE_PORT.to_string(),
            ])
            // The app inherits this environment through WebKitWebDriver: nothing of the
            // machine's own session, home or data leaks in.
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("starting tauri-driver");
        let mut tauri_driver = Process {
            name: "tauri-driver",
            child,
        };
        wait_for_port(DRIVER_PORT, &mut tauri_driver, &driver_log).await;
        wait_for_port(NATIVE_PORT, &mut tauri_driver, &driver_log).await;

        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("wry"));
        capabilities.insert(
            "tauri:options".into(),
            json!({ "application": app_binary() }),
        );
        let asked = Instant::now();
        let driver = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{DRIVER_PORT}"))
            .await
            .unwrap_or_else(|err| {
                let log = std::fs::read_to_string(&driver_log).unwrap_or_default();
                panic!("no WebDriver session with the app: {err}\n{log}")
            });
        let mut window = Window {
            page: Page { driver, test },
            notifications,
            tray,
            env,
            home,
            startup: Duration::ZERO,
            tauri_driver,
            _xvfb: xvfb,
            _bus: bus,
            _dirs: dirs,
            _serial: serial,
        };
        window.interactable("owner-name").await;
        window.startup = asked.elapsed();
        window
    }

    /// The app's process (a descendant of tauri-driver, through WebKitWebDriver).
    pub fn app_pid(&self) -> u32 {
        let binary = std::fs::canonicalize(app_binary()).unwrap_or_else(|_| app_binary());
        descendants(self.tauri_driver.pid())
            .into_iter()
            .find(|&pid| {
                std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary)
                    || comm(pid) == "tidings-desktop"
            })
            .expect("the app's process under tauri-driver")
    }

    /// The PSS of the app and each of its descendants (WebKit's web and network processes), by
    /// process name, in KiB.
    pub fn memory(&self) -> Vec<(String, u64)> {
        let app = self.app_pid();
        std::iter::once(app)
            .chain(descendants(app))
            .map(|pid| (comm(pid), pss_kib(pid)))
            .filter(|&(_, kib)| kib > 0)
            .collect()
    }

    /// Hosts a group from the first-run form as `owner`; returns the address and invite code the
    /// window shows, and leaves the window in the chat, online.
    pub async fn host_group(&self, owner: &str) -> Hosted {
        self.type_into("owner-name", owner).await;
        self.type_into("owner-password", PASSWORD).await;
        self.click("host-submit").await;
        let invite = self.text("invite-code").await;
        let address = self.text("host-address").await;
        self.shot("hosted").await;
        self.click("host-continue").await;
        self.online().await;
        Hosted { address, invite }
    }

    /// Joins the server at `url` from the first-run form (registering with `invite`, or logging
    /// in without one) and waits until the chat is online.
    pub async fn join_server(&self, url: &str, name: &str, invite: &str) {
        self.click("setup-join").await;
        self.type_into("join-url", url).await;
        self.type_into("join-name", name).await;
        self.type_into("join-password", PASSWORD).await;
        // No invite: log in to an account that exists.
        if !invite.is_empty() {
            self.type_into("join-invite", invite).await;
        }
        self.click("join-submit").await;
        self.online().await;
    }
}

impl Deref for Window {
    type Target = Page;

    fn deref(&self) -> &Page {
        &self.page
    }
}

/// What the window shows after hosting.
#[derive(Debug)]
pub struct Hosted {
    pub address: String,
    pub invite: String,
}

/// A second user: the client core (as the CLI and the app use it), registered at `server` with
/// `invite`, with its own data dir.
pub async fn second_user(server: &str, invite: &str, name: &str) -> TestClient {
    let dir = tempfile::tempdir().expect("temp dir");
    let notes = Arc::new(RecordingNotifier::new());
    let client =
        tidings_client::Client::open(&dir.path().join("client.db"), client_options(&notes))
            .expect("opening the second user's client");
    let events = client.events();
    let user = client
        .register(server, invite, name, PASSWORD)
        .await
        .unwrap_or_else(|err| panic!("{name} registers at {server} with the invite: {err}"));
    assert_eq!(user.name, name);
    let mut test_client = TestClient {
        client,
        events,
        notes,
        dir,
    };
    test_client.online().await;
    test_client
}

/// Logs in over HTTP (another device of `name`); returns the session's token.
pub async fn login(server: &str, name: &str) -> String {
    login_with(server, name, PASSWORD).await
}

/// Logs in over HTTP as `name` with `password`, which must be right; returns the token.
pub async fn login_with(server: &str, name: &str, password: &str) -> String {
    let response = http_client()
        .post(format!("{server}/api/login"))
        .json(&LoginRequest {
            name: name.into(),
            password: password.into(),
            device: Some("another device".into()),
        })
        .send()
        .await
        .expect("login request");
    assert_eq!(response.status(), 200, "login as {name}");
    let login: LoginResponse = response.json().await.expect("login body");
    login.token
}

/// The app's top-level window as the X server (and a window manager) sees it.
pub struct XWindow {
    connection: x11rb::rust_connection::RustConnection,
    window: u32,
}

impl XWindow {
    /// The top-level window titled `Tidings` on `display`, waiting at most [`UI_WAIT`] for it.
    pub async fn find(display: &str) -> XWindow {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{AtomEnum, ConnectionExt};
        let (connection, screen) =
            x11rb::connect(Some(display)).expect("connecting to the test's display");
        let root = connection.setup().roots[screen].root;
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let children = connection
                .query_tree(root)
                .expect("query_tree")
                .reply()
                .expect("the root's windows")
                .children;
            let found = children.into_iter().find(|&window| {
                connection
                    .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 64)
                    .ok()
                    .and_then(|cookie| cookie.reply().ok())
                    .is_some_and(|name| name.value == b"Tidings")
            });
            if let Some(window) = found {
                return XWindow { connection, window };
            }
            assert!(Instant::now() < deadline, "no window titled Tidings");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the window is shown (mapped).
    pub fn shown(&self) -> bool {
        use x11rb::protocol::xproto::{ConnectionExt, MapState};
        self.connection
            .get_window_attributes(self.window)
            .expect("get_window_attributes")
            .reply()
            .is_ok_and(|attributes| attributes.map_state == MapState::VIEWABLE)
    }

    /// Waits (at most [`UI_WAIT`]) until the window is shown, or hidden.
    pub async fn until_shown(&self, shown: bool) {
        let deadline = Instant::now() + UI_WAIT;
        while self.shown() != shown {
            assert!(
                Instant::now() < deadline,
                "the window is still {}",
                if shown { "hidden" } else { "shown" }
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What a click on the window's close button does: the window manager's `WM_DELETE_WINDOW`.
    pub fn close(&self) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask};
        let atom = |name: &[u8]| {
            self.connection
                .intern_atom(false, name)
                .expect("intern_atom")
                .reply()
                .expect("an atom")
                .atom
        };
        let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
        let event = ClientMessageEvent::new(32, self.window, protocols, [delete, 0, 0, 0, 0]);
        self.connection
            .send_event(false, self.window, EventMask::NO_EVENT, event)
            .expect("send_event");
        self.connection.flush().expect("flush");
    }
}

impl Window {
    /// The display the app shows on.
    pub fn display(&self) -> String {
        self.env
            .iter()
            .find(|(name, _)| name == "DISPLAY")
            .map(|(_, value)| value.to_string_lossy().into_owned())
            .expect("a display")
    }

    /// Launches the app binary again, in the same environment (a second launch by the user).
    pub fn launch_again(&self) -> std::process::Child {
        Command::new(app_binary())
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("launching the app again")
    }
}
