//! The browser harness: Debian's Chromium, headed on a virtual display of its own with a private
//! D-Bus session bus (whose recording notification service shows Chromium's native
//! notifications to the test), driven by `chromedriver` over WebDriver, against the real server
//! on loopback serving the web app. Dropping a [`Browser`] kills everything it started.
//!
//! Unlike tauri-driver, chromedriver takes any port, so browsers run in parallel, each with its
//! own display, bus, profile and driver.

use std::net::TcpListener;
use std::ops::Deref;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::ClientBuilder;
use serde_json::json;
use tempfile::TempDir;
use tidings_proto::v1::Invite;
use tidings_tests::dbus::{NotificationService, PrivateBus};
use tidings_tests::webdriver::{
    Page, Process, UI_WAIT, artifacts_dir, clear_shots, set_private, start_xvfb, wait_for_port,
};
use tidings_tests::{PASSWORD, TestServer};

pub use tidings_tests::webdriver::{literal, report};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A Chromium window with one tab, and everything around it.
pub struct Browser {
    page: Page,
    /// What Chromium asked the desktop's notification service to show.
    pub notifications: NotificationService,
    // Dropped in this order: the session's browser goes with its driver, then the display, the
    // bus and the profile.
    _driver: Process,
    _xvfb: Process,
    _bus: PrivateBus,
    _dirs: TempDir,
}

impl Browser {
    /// Starts Chromium for test `test` (`who` names this browser's screenshots and logs) with
    /// notifications allowed for every page, and opens `url`.
    pub async fn open(test: &'static str, who: &str, url: &str) -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).is_file(),
                "{binary} is missing: run `scripts/deps.sh --test` (Debian's chromium and chromium-driver)"
            );
        }
        let artifacts = artifacts_dir();
        let dirs = tempfile::tempdir().expect("temp dir");
        let home = dirs.path().join("home");
        let runtime = dirs.path().join("runtime");
        let profile = dirs.path().join("profile");
        for dir in [&home, &runtime, &profile] {
            std::fs::create_dir_all(dir).expect("creating the browser's dirs");
        }
        set_private(&runtime);
        let (xvfb, display) = start_xvfb(&artifacts.join(format!("{test}-{who}-xvfb.log")));
        let bus = PrivateBus::start();
        let notifications = NotificationService::start(&bus).await;

        // A free port for the driver: bound, read and let go (chromedriver cannot pick its own).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = artifacts.join(format!("{test}-{who}-chromedriver.log"));
        let log_file = std::fs::File::create(&log).expect("creating the driver log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            // Chromium inherits this environment: nothing of the machine's session leaks in.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DISPLAY", &display)
            .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
            .env("NO_AT_BRIDGE", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("starting chromedriver");
        let mut driver_process = Process {
            name: "chromedriver",
            child,
        };
        wait_for_port(port, &mut driver_process, &log).await;

        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    // As root, Chromium runs only without its sandbox.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    // Without these it floods a closed network with connections of its own.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--enable-precise-memory-info",
                    "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.display()),
                ],
                // Notifications allowed, as if the user had said yes when asked.
                "prefs": { "profile.default_content_setting_values.notifications": 1 },
            }),
        );
        let driver = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|err| {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("no WebDriver session with Chromium: {err}\n{text}")
            });
        driver.goto(url).await.expect("opening the app's URL");
        Browser {
            page: Page { driver, test },
            notifications,
            _driver: driver_process,
            _xvfb: xvfb,
            _bus: bus,
            _dirs: dirs,
        }
    }

    /// Registers `name` with `invite` on the login screen; waits until the chat is online.
    pub async fn register(&self, name: &str, invite: &str) {
        self.type_into("join-name", name).await;
        self.type_into("join-password", PASSWORD).await;
        self.type_into("join-invite", invite).await;
        self.click("join-submit").await;
        self.online().await;
    }

    /// Runs `script` (its last argument is the callback) in the page and returns what it gave.
    pub async fn run(&self, script: &str) -> serde_json::Value {
        tokio::time::timeout(UI_WAIT, self.driver.execute_async(script, vec![]))
            .await
            .expect("the script answers in time")
            .expect("running the script")
    }
}

impl Deref for Browser {
    type Target = Page;

    fn deref(&self) -> &Page {
        &self.page
    }
}

/// Clears the screenshots of an earlier run of `test`.
pub fn fresh(test: &str) {
    clear_shots(test);
}

/// A one-time invite code, made by the owner.
pub async fn invite(server: &TestServer) -> String {
    let owner = server.owner().await;
    let invite: Invite = owner.post("/api/invites", &()).await;
    invite.code
}

/// Waits `within` at most for `cond` to hold, looking every few milliseconds (fantoccini's own
/// waits are for elements; this is for anything a script can read).
pub async fn until<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::task::yield_now().await;
    }
}

/// How long a test waits for something a script reads (a title, a count).
pub const UI_WAIT_SHORT: Duration = Duration::from_secs(10);
