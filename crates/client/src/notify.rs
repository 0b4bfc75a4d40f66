//! Whether a new message raises a desktop notification, and showing it.
//!
//! The feed delivers one [`MessageAlert`] per new message. [`Policy`] decides, with no I/O and
//! with the time passed in, whether that alert becomes a [`Notification`]; a [`Notifier`] shows
//! it. [`DesktopNotifier`] is the real one (the freedesktop notification service over D-Bus);
//! [`RecordingNotifier`] keeps what it is given, for tests.
//!
//! # The rules
//!
//! An alert raises nothing when it is the user's own message, when its room is the focused one
//! (open in a focused window), when the room's level is [`NotifyLevel::Nothing`], when the level
//! is [`NotifyLevel::Mentions`] and the message neither mentions the user nor is a direct
//! message (a DM is addressed to the user, so it counts as a mention), or while "do not
//! disturb" is on (mentions included). Every other alert raises a notification.
//!
//! # Bursts
//!
//! Alerts for one room that follow each other closely are one notification that grows rather than
//! a stack of them: an alert at most [`BURST_WINDOW`] after the previous shown alert of the same
//! room updates the notification the burst started (same [`Notification::key`], `count` one
//! higher). Suppressed alerts neither start nor extend a burst, and focusing a room ends its burst.
//!
//! # Withdrawing
//!
//! A message deleted while its notification is on screen takes the notification with it: when
//! the notification's newest message is the deleted one, [`Policy::on_retract`] names its key
//! and the notifier closes it (the burst ends). A deleted message that an ongoing burst has
//! already moved past (its preview no longer shown) leaves the notification as it is.
//!
//! # Texts
//!
//! The caller names the room: `#ops` for a group room, the peer's name for a DM. A label that
//! starts with `#` is a group room (user names cannot contain `#`).
//!
//! | | title | body |
//! | --- | --- | --- |
//! | group, first | `ana in #ops` (`ana mentioned you in #ops` for a mention) | the preview |
//! | group, burst of n | `n new messages in #ops` | `ana: ` and the newest preview |
//! | DM, first | `ana` | the preview |
//! | DM, burst of n | `n new messages from ana` | the newest preview |
//!
//! Titles and bodies are plain text. A notifier that hands them to something that reads markup
//! escapes them (the D-Bus notification body does).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tidings_proto::v1::{MessageAlert, MessageId, RoomId, UserId};

#[cfg(all(unix, not(target_os = "macos")))]
mod desktop;

#[cfg(all(unix, not(target_os = "macos")))]
pub use desktop::{ClickHandler, DesktopNotifier};

/// How many shown notifications are remembered for withdrawing (the newest ones).
const REMEMBERED_SHOWN: usize = 64;

/// How long after a room's previous notification a new alert still joins its burst.
pub const BURST_WINDOW: Duration = Duration::from_secs(5);

/// The next burst key. Keys are unique in the process, not just in one [`Policy`], so that
/// policies of two accounts can share a notifier; and they grow with time.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// Which messages of a room raise a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    /// Every message from someone else.
    All,
    /// Only messages that mention the user.
    Mentions,
    /// None.
    Nothing,
}

/// A notification to show, or an update of one already shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The room it is about: what a click on it opens.
    pub room: RoomId,
    /// The newest message it stands for.
    pub message_id: MessageId,
    /// How many messages it stands for: 1, or the size of the burst so far.
    pub count: u32,
    pub title: String,
    pub body: String,
    /// The burst it belongs to, unique in the process. The first notification of a burst
    /// (`count` 1) is new; every later one with the same key replaces the one shown before it
    /// instead of stacking another.
    pub key: u64,
}

impl Notification {
    /// Whether this updates the notification shown earlier under the same [`key`](Self::key).
    pub fn replaces(&self) -> bool {
        self.count > 1
    }
}

/// The notification settings and state of one logged-in user. See the [module](self) docs.
#[derive(Debug)]
pub struct Policy {
    me: UserId,
    focused_room: Option<RoomId>,
    do_not_disturb: bool,
    default_level: NotifyLevel,
    room_levels: HashMap<RoomId, NotifyLevel>,
    /// The live burst of each room. Expired ones are dropped on the next alert, so this holds at
    /// most the rooms that raised a notification in the last [`BURST_WINDOW`].
    bursts: HashMap<RoomId, Burst>,
    /// The newest notifications raised, oldest first: (the message it shows, its key, its room).
    shown: VecDeque<(MessageId, u64, RoomId)>,
}

#[derive(Debug)]
struct Burst {
    key: u64,
    count: u32,
    /// When its newest notification was raised.
    last: Instant,
}

impl Policy {
    /// A policy for user `me`: every room at [`NotifyLevel::All`], no room focused, "do not
    /// disturb" off.
    pub fn new(me: UserId) -> Policy {
        Policy {
            me,
            focused_room: None,
            do_not_disturb: false,
            default_level: NotifyLevel::All,
            room_levels: HashMap::new(),
            bursts: HashMap::new(),
            shown: VecDeque::new(),
        }
    }

    /// The room the user is looking at: open, in a focused window. `None` when the window is not
    /// focused or no room is open. Focusing a room ends its burst: the user has seen it.
    pub fn set_focused_room(&mut self, room: Option<RoomId>) {
        self.focused_room = room;
        if let Some(room) = room {
            self.bursts.remove(&room);
        }
    }

    /// "Do not disturb": while on, nothing raises a notification, mentions included.
    pub fn set_do_not_disturb(&mut self, on: bool) {
        self.do_not_disturb = on;
    }

    /// The level of every room without a level of its own.
    pub fn set_default_level(&mut self, level: NotifyLevel) {
        self.default_level = level;
    }

    /// A room's own level; `None` makes it follow the default again.
    pub fn set_room_level(&mut self, room: RoomId, level: Option<NotifyLevel>) {
        match level {
            Some(level) => self.room_levels.insert(room, level),
            None => self.room_levels.remove(&room),
        };
    }

    /// Message `message` was deleted: the key of the notification to withdraw, when one shows it
    /// as its newest message. Its burst ends, so a later alert of the room raises a new one.
    pub fn on_retract(&mut self, message: MessageId) -> Option<u64> {
        let at = self.shown.iter().position(|(id, _, _)| *id == message)?;
        let (_, key, room) = self.shown[at];
        // A later message of the same burst is what the notification shows now.
        if self.shown.iter().skip(at + 1).any(|(_, k, _)| *k == key) {
            return None;
        }
        self.shown.retain(|(_, k, _)| *k != key);
        if self.bursts.get(&room).is_some_and(|burst| burst.key == key) {
            self.bursts.remove(&room);
        }
        Some(key)
    }

    /// The level in force for `room`: its own, or the default.
    pub fn level(&self, room: RoomId) -> NotifyLevel {
        self.room_levels
            .get(&room)
            .copied()
            .unwrap_or(self.default_level)
    }

    /// Decides for one alert, received at `now`. `room_label` is how the room is shown: `#ops`
    /// for a group room, the peer's name for a DM.
    pub fn on_alert(
        &mut self,
        alert: &MessageAlert,
        room_label: &str,
        now: Instant,
    ) -> Option<Notification> {
        if !self.wants(alert, !room_label.starts_with('#')) {
            return None;
        }
        self.bursts
            .retain(|_, burst| now.saturating_duration_since(burst.last) <= BURST_WINDOW);
        let burst = match self.bursts.entry(alert.room) {
            Entry::Occupied(entry) => {
                let burst = entry.into_mut();
                burst.count = burst.count.saturating_add(1);
                burst.last = now;
                burst
            }
            Entry::Vacant(entry) => entry.insert(Burst {
                key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
                count: 1,
                last: now,
            }),
        };
        let (title, body) = texts(alert, room_label, burst.count);
        self.shown.push_back((alert.id, burst.key, alert.room));
        if self.shown.len() > REMEMBERED_SHOWN {
            self.shown.pop_front();
        }
        Some(Notification {
            room: alert.room,
            message_id: alert.id,
            count: burst.count,
            title,
            body,
            key: burst.key,
        })
    }

    /// Whether the alert passes the rules, bursts aside.
    fn wants(&self, alert: &MessageAlert, direct: bool) -> bool {
        if alert.author.id == self.me
            || self.focused_room == Some(alert.room)
            || self.do_not_disturb
        {
            return false;
        }
        match self.level(alert.room) {
            NotifyLevel::All => true,
            // A direct message is addressed to the user: it counts as a mention.
            NotifyLevel::Mentions => alert.mentions_you || direct,
            NotifyLevel::Nothing => false,
        }
    }
}

/// The title and body of the notification for `alert`, the `count`th of its burst (see the table
/// in the module docs).
fn texts(alert: &MessageAlert, room_label: &str, count: u32) -> (String, String) {
    let author = &alert.author.name;
    let preview = &alert.preview;
    let group = room_label.starts_with('#');
    match (group, count) {
        (true, 1) if alert.mentions_you => (
            format!("{author} mentioned you in {room_label}"),
            preview.clone(),
        ),
        (true, 1) => (format!("{author} in {room_label}"), preview.clone()),
        (true, n) => (
            format!("{n} new messages in {room_label}"),
            format!("{author}: {preview}"),
        ),
        (false, 1) => (room_label.to_owned(), preview.clone()),
        (false, n) => (
            format!("{n} new messages from {room_label}"),
            preview.clone(),
        ),
    }
}

/// Shows notifications to the user.
pub trait Notifier: Send + Sync + 'static {
    /// Shows (or, for a [`Notification::replaces`] one, updates) a notification. Must not block
    /// for long.
    fn show(&self, notification: &Notification) -> Result<(), NotifyError>;
    /// Closes the notification of burst `key`, if it is still on screen. Must not block for
    /// long.
    fn withdraw(&self, key: u64) -> Result<(), NotifyError>;
}

/// Why a notification could not be handed over. Failures of the desktop's notification service
/// itself happen later, off the caller's thread, and are logged.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Too many notifications are waiting to be shown: the notification service is not keeping
    /// up, and this one was dropped.
    #[error("too many notifications are waiting to be shown")]
    Busy,
    /// The notifier has stopped and shows nothing more.
    #[error("the notifier has stopped")]
    Stopped,
}

/// A [`Notifier`] that keeps every notification it is given, for tests.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    shown: Mutex<Vec<Notification>>,
    withdrawn: Mutex<Vec<u64>>,
}

impl RecordingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys of the notifications withdrawn so far, oldest first.
    pub fn withdrawn(&self) -> Vec<u64> {
        self.withdrawn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Everything shown so far, oldest first.
    pub fn shown(&self) -> Vec<Notification> {
        self.shown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Notifier for RecordingNotifier {
    fn show(&self, notification: &Notification) -> Result<(), NotifyError> {
        self.shown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(notification.clone());
        Ok(())
    }

    fn withdraw(&self, key: u64) -> Result<(), NotifyError> {
        self.withdrawn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tidings_proto::v1::UserRef;

    use super::*;

    const ME: UserId = 1;
    const ANA: UserId = 2;
    const BOB: UserId = 3;
    const OPS: RoomId = 10;
    const DEV: RoomId = 11;
    const DM_ANA: RoomId = 20;

    fn alert(room: RoomId, id: MessageId, author: UserId, preview: &str) -> MessageAlert {
        let name = match author {
            ME => "me",
            ANA => "ana",
            _ => "bob",
        };
        MessageAlert {
            room,
            id,
            author: UserRef {
                id: author,
                name: name.to_owned(),
            },
            preview: preview.to_owned(),
            sent_at: 1_700_000_000_000 + id,
            mentions_you: false,
        }
    }

    fn mention(room: RoomId, id: MessageId, author: UserId, preview: &str) -> MessageAlert {
        MessageAlert {
            mentions_you: true,
            ..alert(room, id, author, preview)
        }
    }

    fn label(room: RoomId) -> &'static str {
        match room {
            OPS => "#ops",
            DEV => "#dev",
            _ => "ana",
        }
    }

    /// Feeds `alert` to `policy` at `t0 + at`.
    fn at(
        policy: &mut Policy,
        t0: Instant,
        at: Duration,
        alert: &MessageAlert,
    ) -> Option<Notification> {
        policy.on_alert(alert, label(alert.room), t0 + at)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_message_from_someone_else_raises_a_notification() {
        let mut policy = Policy::new(ME);
        let shown = at(
            &mut policy,
            Instant::now(),
            secs(0),
            &alert(OPS, 5, ANA, "deploy?"),
        )
        .unwrap();
        assert_eq!(
            shown,
            Notification {
                room: OPS,
                message_id: 5,
                count: 1,
                title: "ana in #ops".to_owned(),
                body: "deploy?".to_owned(),
                key: shown.key,
            }
        );
        assert!(!shown.replaces());
    }

    #[test]
    fn a_deleted_message_withdraws_the_notification_that_shows_it() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        let first = at(&mut policy, t0, secs(0), &alert(OPS, 5, ANA, "a")).unwrap();
        let other = at(&mut policy, t0, secs(0), &alert(DEV, 6, ANA, "b")).unwrap();
        // Message 5 is what OPS's notification shows: it goes, and its burst ends.
        assert_eq!(policy.on_retract(5), Some(first.key));
        assert_eq!(policy.on_retract(5), None, "withdrawn once");
        let next = at(&mut policy, t0, secs(1), &alert(OPS, 7, ANA, "c")).unwrap();
        assert_ne!(
            next.key, first.key,
            "a new notification, not an update of the closed one"
        );
        // In a burst, only the newest message is on screen: an older one leaves it alone.
        let grown = at(&mut policy, t0, secs(2), &alert(OPS, 8, ANA, "d")).unwrap();
        assert_eq!(grown.key, next.key);
        assert_eq!(policy.on_retract(7), None);
        assert_eq!(policy.on_retract(8), Some(next.key));
        // Never shown: nothing to withdraw.
        assert_eq!(policy.on_retract(99), None);
        assert_eq!(policy.on_retract(6), Some(other.key));
    }

    #[test]
    fn own_messages_never_notify() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        assert_eq!(at(&mut policy, t0, secs(0), &alert(OPS, 5, ME, "hi")), None);
        assert_eq!(
            at(&mut policy, t0, secs(0), &mention(OPS, 6, ME, "@me")),
            None
        );
        assert_eq!(
            at(&mut policy, t0, secs(0), &alert(DM_ANA, 7, ME, "hi")),
            None
        );
    }

    #[test]
    fn the_focused_room_does_not_notify_and_others_do() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        policy.set_focused_room(Some(OPS));
        assert_eq!(at(&mut policy, t0, secs(0), &alert(OPS, 5, ANA, "x")), None);
        assert_eq!(
            at(&mut policy, t0, secs(0), &mention(OPS, 6, ANA, "@me")),
            None
        );
        assert!(at(&mut policy, t0, secs(0), &alert(DEV, 7, ANA, "x")).is_some());
        // The window loses focus: the room notifies again.
        policy.set_focused_room(None);
        assert!(at(&mut policy, t0, secs(1), &alert(OPS, 8, ANA, "x")).is_some());
    }

    #[test]
    fn a_room_at_nothing_is_muted_even_for_mentions() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        policy.set_room_level(OPS, Some(NotifyLevel::Nothing));
        assert_eq!(policy.level(OPS), NotifyLevel::Nothing);
        assert_eq!(at(&mut policy, t0, secs(0), &alert(OPS, 5, ANA, "x")), None);
        assert_eq!(
            at(&mut policy, t0, secs(0), &mention(OPS, 6, ANA, "@me")),
            None
        );
        assert!(at(&mut policy, t0, secs(0), &alert(DEV, 7, ANA, "x")).is_some());
        // Back to the default.
        policy.set_room_level(OPS, None);
        assert_eq!(policy.level(OPS), NotifyLevel::All);
        assert!(at(&mut policy, t0, secs(0), &alert(OPS, 8, ANA, "x")).is_some());
    }

    #[test]
    fn the_default_level_nothing_mutes_rooms_without_their_own_level() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        policy.set_default_level(NotifyLevel::Nothing);
        policy.set_room_level(DEV, Some(NotifyLevel::All));
        assert_eq!(
            at(&mut policy, t0, secs(0), &mention(OPS, 5, ANA, "@me")),
            None
        );
        assert!(at(&mut policy, t0, secs(0), &alert(DEV, 6, ANA, "x")).is_some());
    }

    #[test]
    fn do_not_disturb_silences_everything_mentions_included() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        policy.set_do_not_disturb(true);
        assert_eq!(at(&mut policy, t0, secs(0), &alert(OPS, 5, ANA, "x")), None);
        assert_eq!(
            at(&mut policy, t0, secs(0), &mention(OPS, 6, ANA, "@me")),
            None
        );
        assert_eq!(
            at(&mut policy, t0, secs(0), &alert(DM_ANA, 7, ANA, "x")),
            None
        );
        policy.set_do_not_disturb(false);
        let shown = at(&mut policy, t0, secs(1), &alert(OPS, 8, ANA, "x")).unwrap();
        // What was silenced does not count towards a burst.
        assert_eq!(shown.count, 1);
    }

    #[test]
    fn a_room_at_mentions_notifies_only_for_mentions() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        policy.set_room_level(OPS, Some(NotifyLevel::Mentions));
        assert_eq!(at(&mut policy, t0, secs(0), &alert(OPS, 5, ANA, "x")), None);
        let shown = at(&mut policy, t0, secs(0), &mention(OPS, 6, ANA, "@me look")).unwrap();
        assert_eq!(shown.message_id, 6);
        assert_eq!(shown.title, "ana mentioned you in #ops");
        assert_eq!(shown.body, "@me look");
        // Other rooms follow the default.
        assert!(at(&mut policy, t0, secs(0), &alert(DEV, 7, ANA, "x")).is_some());
    }

    #[test]
    fn the_default_level_mentions_applies_to_rooms_without_their_own_level() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        policy.set_default_level(NotifyLevel::Mentions);
        policy.set_room_level(DEV, Some(NotifyLevel::All));
        assert_eq!(policy.level(OPS), NotifyLevel::Mentions);
        assert_eq!(at(&mut policy, t0, secs(0), &alert(OPS, 5, ANA, "x")), None);
        // A direct message counts as a mention: "mentions only" still lets it through.
        assert!(at(&mut policy, t0, secs(0), &alert(DM_ANA, 6, ANA, "x")).is_some());
        assert!(at(&mut policy, t0, secs(0), &mention(OPS, 7, ANA, "@me")).is_some());
        assert!(at(&mut policy, t0, secs(0), &alert(DEV, 8, BOB, "x")).is_some());
    }

    #[test]
    fn a_burst_updates_one_notification() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        let shown: Vec<Notification> = (0..5)
            .map(|i| {
                let a = alert(OPS, 100 + i, ANA, &format!("line {i}"));
                at(&mut policy, t0, secs(i as u64), &a).unwrap()
            })
            .collect();
        assert_eq!(shown[0].title, "ana in #ops");
        assert_eq!(shown[0].body, "line 0");
        assert!(!shown[0].replaces());
        for (i, n) in shown.iter().enumerate().skip(1) {
            assert_eq!(n.key, shown[0].key, "{n:?}");
            assert_eq!(n.count, i as u32 + 1);
            assert!(n.replaces());
            assert_eq!(n.message_id, 100 + i as MessageId);
            assert_eq!(n.room, OPS);
            assert_eq!(n.title, format!("{} new messages in #ops", i + 1));
            assert_eq!(n.body, format!("ana: line {i}"));
        }
    }

    #[test]
    fn the_window_runs_from_the_previous_alert() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        let first = at(&mut policy, t0, secs(0), &alert(OPS, 1, ANA, "a")).unwrap();
        // Exactly one window later: still the same burst.
        let second = at(&mut policy, t0, BURST_WINDOW, &alert(OPS, 2, BOB, "b")).unwrap();
        assert_eq!((second.key, second.count), (first.key, 2));
        assert_eq!(second.body, "bob: b");
        // Just past one window after the *previous* alert: a new burst, a new notification.
        let third = at(
            &mut policy,
            t0,
            BURST_WINDOW * 2 + Duration::from_millis(1),
            &alert(OPS, 3, ANA, "c"),
        )
        .unwrap();
        assert_ne!(third.key, first.key);
        assert_eq!(third.count, 1);
        assert!(!third.replaces());
        assert_eq!(third.title, "ana in #ops");
        assert_eq!(third.body, "c");
    }

    #[test]
    fn policies_never_share_a_key() {
        // Two accounts' policies may feed one notifier.
        let (mut one, mut two) = (Policy::new(ME), Policy::new(ME));
        let t0 = Instant::now();
        let a = at(&mut one, t0, secs(0), &alert(OPS, 1, ANA, "a")).unwrap();
        let b = at(&mut two, t0, secs(0), &alert(OPS, 1, ANA, "a")).unwrap();
        assert_ne!(a.key, b.key);
    }

    #[test]
    fn rooms_burst_separately() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        let ops1 = at(&mut policy, t0, secs(0), &alert(OPS, 1, ANA, "a")).unwrap();
        let dev1 = at(&mut policy, t0, secs(0), &alert(DEV, 2, BOB, "b")).unwrap();
        let ops2 = at(&mut policy, t0, secs(1), &alert(OPS, 3, ANA, "c")).unwrap();
        let dev2 = at(&mut policy, t0, secs(2), &alert(DEV, 4, BOB, "d")).unwrap();
        let dev3 = at(&mut policy, t0, secs(3), &alert(DEV, 5, BOB, "e")).unwrap();
        assert_ne!(ops1.key, dev1.key);
        assert_eq!((ops2.key, ops2.count), (ops1.key, 2));
        assert_eq!((dev2.key, dev2.count), (dev1.key, 2));
        assert_eq!((dev3.key, dev3.count), (dev1.key, 3));
        assert_eq!(dev3.title, "3 new messages in #dev");
        assert_eq!(ops2.title, "2 new messages in #ops");
    }

    #[test]
    fn suppressed_alerts_do_not_count_towards_a_burst() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        policy.set_room_level(OPS, Some(NotifyLevel::Mentions));
        let first = at(&mut policy, t0, secs(0), &mention(OPS, 1, ANA, "@me a")).unwrap();
        // Not mentions, own messages: suppressed, and they do not keep the burst alive either.
        for (i, s) in [2, 4, 6, 8].into_iter().enumerate() {
            assert_eq!(
                at(
                    &mut policy,
                    t0,
                    secs(s),
                    &alert(OPS, 2 + i as i64, ANA, "x")
                ),
                None
            );
        }
        assert_eq!(at(&mut policy, t0, secs(9), &alert(OPS, 9, ME, "x")), None);
        let next = at(&mut policy, t0, secs(10), &mention(OPS, 10, ANA, "@me b")).unwrap();
        assert_ne!(next.key, first.key);
        assert_eq!(next.count, 1);
        // Within the window, only the shown ones count.
        assert_eq!(
            at(&mut policy, t0, secs(11), &alert(OPS, 11, ANA, "x")),
            None
        );
        let third = at(&mut policy, t0, secs(12), &mention(OPS, 12, ANA, "@me c")).unwrap();
        assert_eq!((third.key, third.count), (next.key, 2));
    }

    #[test]
    fn focusing_a_room_ends_its_burst() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        let first = at(&mut policy, t0, secs(0), &alert(OPS, 1, ANA, "a")).unwrap();
        policy.set_focused_room(Some(OPS));
        policy.set_focused_room(None);
        let next = at(&mut policy, t0, secs(1), &alert(OPS, 2, ANA, "b")).unwrap();
        assert_ne!(next.key, first.key);
        assert_eq!(next.count, 1);
    }

    #[test]
    fn direct_messages_are_titled_by_the_peer() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        let first = at(&mut policy, t0, secs(0), &alert(DM_ANA, 1, ANA, "lunch?")).unwrap();
        assert_eq!(first.title, "ana");
        assert_eq!(first.body, "lunch?");
        // A mention in a DM says nothing more than the DM itself.
        let second = at(
            &mut policy,
            t0,
            secs(1),
            &mention(DM_ANA, 2, ANA, "@me at 12"),
        )
        .unwrap();
        assert_eq!(second.title, "2 new messages from ana");
        assert_eq!(second.body, "@me at 12");
        let third = at(&mut policy, t0, secs(2), &alert(DM_ANA, 3, ANA, "ok?")).unwrap();
        assert_eq!(third.title, "3 new messages from ana");
        assert_eq!(third.body, "ok?");
        assert_eq!((third.key, third.count), (first.key, 3));
    }

    #[test]
    fn texts_are_kept_as_plain_text() {
        // Escaping is the D-Bus notifier's business: the notification itself is what was written.
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        let raw = "<b>bold</b> & <i>co</i>";
        let shown = at(&mut policy, t0, secs(0), &alert(OPS, 1, ANA, raw)).unwrap();
        assert_eq!(shown.body, raw);
        let next = at(&mut policy, t0, secs(1), &alert(OPS, 2, ANA, raw)).unwrap();
        assert_eq!(next.body, format!("ana: {raw}"));
    }

    #[test]
    fn expired_bursts_are_forgotten() {
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        for room in 0..100 {
            at(&mut policy, t0, secs(0), &alert(room, room, ANA, "x")).unwrap();
        }
        assert_eq!(policy.bursts.len(), 100);
        at(&mut policy, t0, secs(60), &alert(OPS, 1000, ANA, "x")).unwrap();
        assert_eq!(policy.bursts.len(), 1);
    }

    #[test]
    fn levels_use_the_stores_json_names() {
        for (level, json) in [
            (NotifyLevel::All, "\"all\""),
            (NotifyLevel::Mentions, "\"mentions\""),
            (NotifyLevel::Nothing, "\"nothing\""),
        ] {
            assert_eq!(serde_json::to_string(&level).unwrap(), json);
            assert_eq!(serde_json::from_str::<NotifyLevel>(json).unwrap(), level);
        }
    }

    #[test]
    fn the_recording_notifier_keeps_everything_in_order() {
        let notifier = RecordingNotifier::new();
        let mut policy = Policy::new(ME);
        let t0 = Instant::now();
        for i in 0..3 {
            let n = at(&mut policy, t0, secs(i), &alert(OPS, i as i64, ANA, "x")).unwrap();
            notifier.show(&n).unwrap();
        }
        let counts: Vec<u32> = notifier.shown().iter().map(|n| n.count).collect();
        assert_eq!(counts, [1, 2, 3]);
    }
}
