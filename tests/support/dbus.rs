//! Desktop notifications on a real D-Bus session bus of the test's own.
//!
//! [`PrivateBus`] is a `dbus-daemon` started for one test and stopped when dropped.
//! [`NotificationService`] owns `org.freedesktop.Notifications` on it, answers as a notification
//! server would, records every `Notify` call, and plays the user's click (`ActionInvoked`).
//!
//! notify-rust, and so the client core's `DesktopNotifier`, always talks to the bus named by
//! `DBUS_SESSION_BUS_ADDRESS`; it takes neither an address nor a connection. The workspace forbids
//! `unsafe`, so a test cannot set that variable for itself: the notifier runs in a child process
//! started with `DBUS_SESSION_BUS_ADDRESS` set to [`PrivateBus::address`].

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;
use zbus::object_server::SignalEmitter;

use crate::WAIT;

/// The well-known name of the notification service.
pub const SERVICE: &str = "org.freedesktop.Notifications";
/// Where the service's object lives.
pub const PATH: &str = "/org/freedesktop/Notifications";

/// A private session bus: a `dbus-daemon` of the test's own, stopped when this is dropped.
pub struct PrivateBus {
    daemon: Child,
    address: String,
}

impl PrivateBus {
    /// Starts the daemon and reads the address it listens on.
    pub fn start() -> PrivateBus {
        let daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Kept unread unless it fails to start: it says little (a warning at most), which
            // fits in the pipe.
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting dbus-daemon (Debian package dbus-daemon)");
        // The guard exists before anything can fail, so the daemon is stopped whatever happens.
        let mut bus = PrivateBus {
            daemon,
            address: String::new(),
        };
        let stdout = bus.daemon.stdout.take().expect("the daemon's stdout");
        BufReader::new(stdout)
            .read_line(&mut bus.address)
            .expect("reading the private bus's address");
        bus.address = bus.address.trim().to_owned();
        if bus.address.is_empty() {
            let mut stderr = String::new();
            if let Some(mut pipe) = bus.daemon.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("dbus-daemon exited without printing its address:\n{stderr}");
        }
        bus
    }

    /// The bus's address, for a child's `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// One `Notify` call as the service received it, with the id it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyCall {
    pub id: u32,
    pub app_name: String,
    pub replaces_id: u32,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
    /// The `category` hint.
    pub category: Option<String>,
}

/// A notification service on a [`PrivateBus`] that records what it is asked to show. It keeps the
/// service's name while it lives.
pub struct NotificationService {
    connection: zbus::Connection,
    calls: mpsc::Receiver<NotifyCall>,
    /// The ids `CloseNotification` was called with.
    closes: mpsc::Receiver<u32>,
}

impl NotificationService {
    /// Connects to `bus` and owns the notification service's name there.
    pub async fn start(bus: &PrivateBus) -> NotificationService {
        // Bounded: a notifier waits for each answer, and the recorder answers only once the call
        // is queued, so a test that stops reading slows the notifiers down instead of growing this.
        let (calls_tx, calls) = mpsc::channel(64);
        let (closes_tx, closes) = mpsc::channel(64);
        let connection = zbus::connection::Builder::address(bus.address())
            .name(SERVICE)
            .serve_at(
                PATH,
                Recorder {
                    calls: calls_tx,
                    closes: closes_tx,
                    last_id: 0,
                },
            )
            .build()
            .await
            .expect("owning the notification service's name on the private bus");
        NotificationService {
            connection,
            calls,
            closes,
        }
    }

    /// The next `Notify` call, however long it takes (for `select!` with other events; the
    /// caller bounds the wait).
    pub async fn next(&mut self) -> NotifyCall {
        self.calls
            .recv()
            .await
            .expect("the recorder lives as long as the service")
    }

    /// The next `Notify` call within [`WAIT`]; panics naming `what` otherwise.
    pub async fn expect(&mut self, what: &str) -> NotifyCall {
        tokio::time::timeout(WAIT, self.next())
            .await
            .unwrap_or_else(|_| panic!("no Notify call for {what} within {WAIT:?}"))
    }

    /// The next `Notify` call if one arrives within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<NotifyCall> {
        tokio::time::timeout(within, self.next()).await.ok()
    }

    /// The id of the next `CloseNotification` call within [`WAIT`]; panics naming `what`
    /// otherwise.
    pub async fn expect_close(&mut self, what: &str) -> u32 {
        tokio::time::timeout(WAIT, self.closes.recv())
            .await
            .unwrap_or_else(|_| panic!("no CloseNotification for {what} within {WAIT:?}"))
            .expect("the recorder lives as long as the service")
    }

    /// A call already recorded and not read yet.
    pub fn try_next(&mut self) -> Option<NotifyCall> {
        self.calls.try_recv().ok()
    }

    /// Plays a click: the service's `ActionInvoked(id, action_key)` signal (`"default"` for a
    /// click on the notification itself).
    pub async fn invoke_action(&self, id: u32, action_key: &str) {
        let emitter = SignalEmitter::new(&self.connection, PATH).expect("the service's path");
        Recorder::action_invoked(&emitter, id, action_key)
            .await
            .expect("emitting ActionInvoked");
    }
}

/// The service's object: records each call and answers with an id as a server would.
struct Recorder {
    calls: mpsc::Sender<NotifyCall>,
    closes: mpsc::Sender<u32>,
    last_id: u32,
}

#[zbus::interface(name = "org.freedesktop.Notifications", spawn = false)]
impl Recorder {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &mut self,
        app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, zbus::OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let id = if replaces_id == 0 {
            self.last_id += 1;
            self.last_id
        } else {
            replaces_id
        };
        let category = hints
            .get("category")
            .and_then(|value| String::try_from(value.clone()).ok());
        let call = NotifyCall {
            id,
            app_name,
            replaces_id,
            summary,
            body,
            actions,
            category,
        };
        // A test fails on a missing call; a closed channel means it has already ended.
        let _ = self.calls.send(call).await;
        id
    }

    fn get_capabilities(&self) -> Vec<String> {
        ["actions", "body", "body-markup"]
            .map(String::from)
            .to_vec()
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "tidings-recorder".to_owned(),
            "Tidings".to_owned(),
            "0".to_owned(),
            "1.2".to_owned(),
        )
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        let _ = self.closes.send(id).await;
        // Reason 3: closed by a call to CloseNotification.
        Self::notification_closed(&emitter, id, 3).await?;
        Ok(())
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}
