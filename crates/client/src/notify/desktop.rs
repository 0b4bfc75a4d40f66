//! Desktop notifications through the freedesktop notification service
//! (`org.freedesktop.Notifications` on the D-Bus session bus), with notify-rust.
//!
//! [`DesktopNotifier::show`] only queues: one worker thread owns every D-Bus conversation, so the
//! caller (an async task handling the feed) never waits on the bus. The worker keeps, per burst
//! key, the id the service gave the burst's notification, and sends an update with that id so
//! the service replaces the notification instead of stacking a new one.
//!
//! Withdrawing: the worker closes a burst's notification by its id. notify-rust closes only
//! through the handle a `Notify` call answers, so the worker sends the burst's last notification
//! again under its id (nothing on screen changes) and closes the handle it gets.
//!
//! Clicks: with a click handler, the worker listens on each live notification for its
//! `ActionInvoked(id, "default")` signal. A listener ends with the notification: on its first
//! action, or on the service's `NotificationClosed(id, _)`, which the service sends when the
//! notification expires, is dismissed or is closed. So there is one listener per notification
//! still on screen, capped at [`MAX_LISTENERS`]; past that, a notification is shown without
//! click handling.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use notify_rust::{Hint, NotificationHandle, NotificationResponse};
use tidings_proto::v1::RoomId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Notification, Notifier, NotifyError};

/// Called with the room of a notification the user clicked.
pub type ClickHandler = Arc<dyn Fn(RoomId) + Send + Sync>;

/// Notifications waiting for the worker. A full queue means the service is not answering; a
/// notification that does not fit is dropped ([`NotifyError::Busy`]).
const QUEUE: usize = 32;
/// Notifications whose clicks are listened for at once (each holds one D-Bus connection).
const MAX_LISTENERS: usize = 32;
/// Bursts whose notification id is remembered; older bursts are long over (a burst lasts a few
/// seconds), and an update of a forgotten one would simply show a new notification.
const REMEMBERED_BURSTS: usize = 64;

/// What the worker is asked to do.
enum Request {
    Show(Notification),
    /// Close the notification of this burst key.
    Withdraw(u64),
}

/// A [`Notifier`] that shows notifications on the desktop. Dropping it stops its worker: pending
/// notifications are dropped, and the click handler is not called any more.
pub struct DesktopNotifier {
    queue: mpsc::Sender<Request>,
    stop: CancellationToken,
    worker: Option<JoinHandle<()>>,
}

impl DesktopNotifier {
    /// A notifier showing notifications as `app_name`. `on_click` is called, on the notifier's
    /// own thread, with the room when the user clicks a notification (its "default" action).
    pub fn new(app_name: &str, on_click: Option<ClickHandler>) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        let stop = CancellationToken::new();
        let worker = Worker {
            app_name: app_name.to_owned(),
            on_click,
            ids: BTreeMap::new(),
            failing: false,
        };
        let token = stop.clone();
        let worker = std::thread::Builder::new()
            .name("tidings-notify".to_owned())
            .spawn(move || worker.run(requests, token))
            // Without its thread the queue's receiver is gone, so `show` answers `Stopped`.
            .inspect_err(|error| tracing::error!(%error, "cannot start the notification thread"))
            .ok();
        DesktopNotifier {
            queue,
            stop,
            worker,
        }
    }
}

impl DesktopNotifier {
    fn ask(&self, request: Request) -> Result<(), NotifyError> {
        self.queue.try_send(request).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => NotifyError::Busy,
            mpsc::error::TrySendError::Closed(_) => NotifyError::Stopped,
        })
    }
}

impl Notifier for DesktopNotifier {
    fn show(&self, notification: &Notification) -> Result<(), NotifyError> {
        self.ask(Request::Show(notification.clone()))
    }

    fn withdraw(&self, key: u64) -> Result<(), NotifyError> {
        self.ask(Request::Withdraw(key))
    }
}

impl Drop for DesktopNotifier {
    fn drop(&mut self) {
        self.stop.cancel();
        let Some(worker) = self.worker.take() else {
            return;
        };
        // A click handler that drops the notifier runs on the worker itself, which then stops
        // on its own after the handler returns.
        if worker.thread().id() != std::thread::current().id() && worker.join().is_err() {
            tracing::error!("the notification thread panicked");
        }
    }
}

impl fmt::Debug for DesktopNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DesktopNotifier")
            .field("stopped", &self.stop.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// The state of the worker thread.
struct Worker {
    app_name: String,
    on_click: Option<ClickHandler>,
    /// The service's notification id for each recent burst key, and what it last showed.
    ids: BTreeMap<u64, (u32, Notification)>,
    /// Whether the last notification failed to show.
    failing: bool,
}

impl Worker {
    fn run(mut self, mut requests: mpsc::Receiver<Request>, stop: CancellationToken) {
        // notify-rust's D-Bus connections run on zbus's own executor; this runtime only drives
        // the worker's futures, on this one thread.
        let runtime = match tokio::runtime::Builder::new_current_thread().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "cannot start the notification runtime");
                return;
            }
        };
        runtime.block_on(async move {
            let mut listeners = FuturesUnordered::new();
            // The ids listened on, so that a burst's updates, which keep the id, add no listener.
            let mut listening = HashSet::new();
            loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    Some(id) = listeners.next(), if !listeners.is_empty() => {
                        listening.remove(&id);
                    }
                    request = requests.recv() => {
                        let notification = match request {
                            None => break,
                            Some(Request::Show(notification)) => notification,
                            Some(Request::Withdraw(key)) => {
                                tokio::select! {
                                    biased;
                                    () = stop.cancelled() => break,
                                    () = self.withdraw(key) => {}
                                }
                                continue;
                            }
                        };
                        tokio::select! {
                            biased;
                            () = stop.cancelled() => break,
                            listener = self.deliver(&notification, &mut listening) => {
                                listeners.extend(listener);
                            }
                        }
                    }
                }
            }
        });
    }

    /// Shows one notification; with a click handler, returns the listener for its clicks unless
    /// the notification (an earlier one of its burst) already has one.
    async fn deliver(
        &mut self,
        notification: &Notification,
        listening: &mut HashSet<u32>,
    ) -> Option<impl Future<Output = u32> + use<>> {
        let handle = match self.show(notification).await {
            Ok(handle) => handle,
            // Without a notification service every notification fails alike: say it once.
            Err(error) if self.failing => {
                tracing::debug!(%error, "the desktop did not show a notification");
                return None;
            }
            Err(error) => {
                tracing::warn!(%error, "the desktop did not show a notification");
                self.failing = true;
                return None;
            }
        };
        self.failing = false;
        let id = handle.id();
        self.remember(notification, id);
        let on_click = self.on_click.clone()?;
        if listening.contains(&id) {
            return None;
        }
        if listening.len() >= MAX_LISTENERS {
            tracing::debug!(
                id,
                "too many notifications on screen to listen for their clicks"
            );
            return None;
        }
        listening.insert(id);
        Some(listen_for_click(handle, notification.room, on_click))
    }

    /// Sends one notification, as an update of its burst's when the burst already has one.
    async fn show(
        &self,
        notification: &Notification,
    ) -> notify_rust::error::Result<NotificationHandle> {
        let mut message = notify_rust::Notification::new();
        message
            .appname(&self.app_name)
            .summary(&notification.title)
            .body(&escape_markup(&notification.body))
            .action("default", "Open")
            .hint(Hint::Category("im.received".to_owned()));
        if let Some((id, _)) = self.ids.get(&notification.key) {
            message.id(*id);
        }
        message.show_async().await
    }

    /// Closes burst `key`'s notification, if it has one.
    async fn withdraw(&mut self, key: u64) {
        let Some((_, last)) = self.ids.get(&key) else {
            return;
        };
        // The same notification under its id (`show` sends the remembered one): the handle that
        // can close it.
        let shown = self.show(&last.clone()).await;
        self.ids.remove(&key);
        match shown {
            Ok(handle) => handle.close_async().await,
            Err(error) => tracing::debug!(%error, "the desktop did not close a notification"),
        }
    }

    fn remember(&mut self, notification: &Notification, id: u32) {
        self.ids
            .insert(notification.key, (id, notification.clone()));
        // Keys grow with time, so the smallest is the oldest burst.
        while self.ids.len() > REMEMBERED_BURSTS {
            self.ids.pop_first();
        }
    }
}

/// Waits for the notification's first action or its closing; calls `on_click` for the default
/// action. Resolves to the notification's id.
fn listen_for_click(
    handle: NotificationHandle,
    room: RoomId,
    on_click: ClickHandler,
) -> impl Future<Output = u32> {
    let id = handle.id();
    let listen = async move {
        handle
            .wait_for_action_async(|response| {
                if *response == NotificationResponse::Default {
                    on_click(room);
                }
            })
            .await;
    };
    // notify-rust panics if the bus goes away while it subscribes; that ends this listener, not
    // the worker.
    AssertUnwindSafe(listen).catch_unwind().map(move |outcome| {
        if outcome.is_err() {
            tracing::warn!(id, "stopped listening for clicks on a notification");
        }
        id
    })
}

/// The notification specification lets a body carry a small markup language; message text is
/// shown as written, so `<`, `>` and `&` become entities.
fn escape_markup(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_markup("<b>bold</b> & <a href=\"x\">link</a>"),
            "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;a href=\"x\"&gt;link&lt;/a&gt;"
        );
        // Escaping is not undone: an entity the user typed shows as typed.
        assert_eq!(escape_markup("&amp; &lt;"), "&amp;amp; &amp;lt;");
    }

    #[test]
    fn plain_text_is_left_alone() {
        for text in ["", "hello", "héllo 😀 \"quoted\" 'single'\nnext line"] {
            assert_eq!(escape_markup(text), text);
        }
    }

    #[test]
    fn a_stopped_notifier_refuses_notifications() {
        let mut notifier = DesktopNotifier::new("Tidings test", None);
        // Stopping touches no bus: the worker leaves its loop and drops the queue's receiver.
        notifier.stop.cancel();
        notifier.worker.take().unwrap().join().unwrap();
        let notification = Notification {
            room: 1,
            message_id: 1,
            count: 1,
            title: "t".to_owned(),
            body: "b".to_owned(),
            key: 1,
        };
        assert!(matches!(
            notifier.show(&notification),
            Err(NotifyError::Stopped)
        ));
    }
}
