//! `DesktopNotifier` end to end, on a real D-Bus session bus.
//!
//! The test starts a private `dbus-daemon` and a recording notification service on it
//! (`tidings_tests::dbus`). The notifier then shows a burst and a direct message through
//! notify-rust, exactly as in the desktop app, and the service records the calls; a click is the
//! service's `ActionInvoked(id, "default")` signal. The DM is then deleted: its notification is
//! withdrawn (`CloseNotification`).
//!
//! notify-rust only talks to the bus named by `DBUS_SESSION_BUS_ADDRESS`, which this process
//! cannot set for itself (no `unsafe`). So the notifier runs in a child process: this same test
//! binary, started with `DBUS_SESSION_BUS_ADDRESS` pointing at the private bus and asked to run
//! only this test, which then plays the notifier's side (`notifier_side`). The library has no
//! test-only way in: what runs is what the app runs.

#![cfg(all(unix, not(target_os = "macos")))]

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidings_client::notify::{DesktopNotifier, Notifier, Policy};
use tidings_proto::v1::{MessageAlert, RoomId, UserRef};
use tidings_tests::WAIT;
use tidings_tests::dbus::{NotificationService, NotifyCall, PrivateBus};
use tokio::io::AsyncReadExt;

/// Set in the child's environment: run the notifier's side.
const CHILD_ROLE: &str = "TIDINGS_NOTIFY_DBUS_CHILD";
/// This test's name in this binary, for the child's test filter.
const TEST_NAME: &str = "notify::desktop_notifier_on_a_private_session_bus";

const APP: &str = "Tidings";

/// What the child shows: two messages in #ops (one burst), then a DM.
const ME: i64 = 1;
const OPS: RoomId = 7;
const DM: RoomId = 9;

#[test]
fn desktop_notifier_on_a_private_session_bus() {
    if std::env::var_os(CHILD_ROLE).is_some() {
        return notifier_side();
    }
    let bus = PrivateBus::start();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(service_side(&bus));
}

/// The child: shows notifications through `DesktopNotifier` and waits for the click. Its exit
/// status is the verdict the parent reads.
fn notifier_side() {
    let (clicked, clicks) = std::sync::mpsc::sync_channel(4);
    let notifier = DesktopNotifier::new(
        APP,
        Some(Arc::new(move |room| {
            let _ = clicked.try_send(room);
        })),
    );
    let mut policy = Policy::new(ME);
    let t0 = Instant::now();
    let alerts = [
        (
            alert(OPS, 100, 2, "ana", "<b>deploy</b> at 5 & then lunch"),
            "#ops",
        ),
        (alert(OPS, 101, 3, "bob", "ok"), "#ops"),
        (alert(DM, 102, 2, "ana", "psst"), "ana"),
    ];
    for (i, (alert, label)) in alerts.iter().enumerate() {
        let at = t0 + Duration::from_secs(i as u64);
        let notification = policy.on_alert(alert, label, at).expect("a notification");
        notifier.show(&notification).unwrap();
    }
    // The DM is deleted: its notification goes.
    let key = policy
        .on_retract(102)
        .expect("the DM's notification shows it");
    notifier.withdraw(key).unwrap();
    let room = clicks
        .recv_timeout(WAIT)
        .expect("no click reached on_click");
    assert_eq!(room, OPS);
}

fn alert(room: RoomId, id: i64, author: i64, name: &str, preview: &str) -> MessageAlert {
    MessageAlert {
        room,
        id,
        author: UserRef {
            id: author,
            name: name.to_owned(),
        },
        preview: preview.to_owned(),
        sent_at: 1_700_000_000_000,
        mentions_you: false,
    }
}

/// The parent: owns the notification service, starts the child, checks what the child sent, and
/// clicks.
async fn service_side(bus: &PrivateBus) {
    let mut service = NotificationService::start(bus).await;

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--test-threads=1", "--nocapture"])
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .env(CHILD_ROLE, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut output = {
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let (mut out, mut err) = (String::new(), String::new());
            let _ = tokio::join!(
                stdout.read_to_string(&mut out),
                stderr.read_to_string(&mut err)
            );
            // Indented, so that the child's own test summary is not read as this run's.
            (out + &err)
                .lines()
                .map(|line| format!("  | {line}\n"))
                .collect::<String>()
        })
    };

    // The burst's two messages and the DM; the child stays until it is clicked, so its ending
    // first is its failure.
    let mut recorded = Vec::new();
    while recorded.len() < 4 {
        let next = tokio::time::timeout(WAIT, async {
            tokio::select! {
                call = service.next() => Ok(call),
                status = child.wait() => Err(status.unwrap()),
            }
        });
        match next.await {
            Ok(Ok(call)) => recorded.push(call),
            Ok(Err(status)) => panic!(
                "the notifier's side ended ({status}) after {} Notify calls:\n{}",
                recorded.len(),
                (&mut output).await.unwrap()
            ),
            Err(_) => panic!("the notifier did not call Notify in time"),
        }
    }
    let [first, update, dm, again] = <[NotifyCall; 4]>::try_from(recorded).unwrap();

    assert_eq!(first.app_name, APP);
    assert_eq!(first.replaces_id, 0, "a new burst is a new notification");
    assert_eq!(first.summary, "ana in #ops");
    assert_eq!(
        first.body, "&lt;b&gt;deploy&lt;/b&gt; at 5 &amp; then lunch",
        "message text must not be read as markup"
    );
    assert_eq!(first.actions, ["default", "Open"]);
    assert_eq!(first.category.as_deref(), Some("im.received"));

    assert_eq!(update.app_name, APP);
    assert_eq!(
        update.replaces_id, first.id,
        "a burst updates the notification it started"
    );
    assert_eq!(update.id, first.id);
    assert_eq!(update.summary, "2 new messages in #ops");
    assert_eq!(update.body, "bob: ok");
    assert_eq!(update.actions, ["default", "Open"]);

    assert_eq!(dm.replaces_id, 0, "another room is another notification");
    assert_ne!(dm.id, first.id);
    assert_eq!(dm.summary, "ana");
    assert_eq!(dm.body, "psst");

    // Withdrawn: the same notification under its id (notify-rust's way to a handle), then closed.
    assert_eq!(
        (
            again.replaces_id,
            again.summary.as_str(),
            again.body.as_str()
        ),
        (dm.id, "ana", "psst"),
        "nothing on screen changes before it goes"
    );
    assert_eq!(service.expect_close("the deleted DM").await, dm.id);

    // Click the #ops notification. notify-rust subscribes to the signal only after `Notify` has
    // answered, and nothing on the bus tells when its subscription is complete, so the click is
    // sent again until the child reports it. A repeated click is harmless: the listener ends at
    // the first one.
    let deadline = Instant::now() + WAIT;
    let status = loop {
        service.invoke_action(first.id, "default").await;
        let attempt = Duration::from_millis(200);
        match tokio::time::timeout(attempt, child.wait()).await {
            Ok(status) => break status.unwrap(),
            Err(_) if Instant::now() < deadline => continue,
            Err(_) => panic!("the notifier did not report the click in time"),
        }
    };
    let output = output.await.unwrap();
    assert!(status.success(), "the notifier's side failed:\n{output}");
    assert!(
        service.try_next().is_none(),
        "a click or an update must not raise another notification"
    );
}
