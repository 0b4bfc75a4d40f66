//! The live side of the server: which connections are open, which users are in which rooms, and
//! the fan-out that gets a committed message to every one of them.
//!
//! Fan-out encodes once: a message becomes one [`Published`] (its chat frame and its two feed
//! alerts, with and without `mentions_you`), and every recipient's bounded queue gets a pointer
//! to it. What a connection does with its queue is the [`crate::delivery`] module's business.
//! A queue that is full means its connection has fallen behind: the connection is kicked with
//! [`Kick::Lagging`] (close code 4000) and resyncs from the store when it reconnects — a message
//! is never silently dropped and a slow client never grows the server's memory.
//!
//! Presence is told to the people who can see it — those who share a room with the user (their
//! DM peers included) — not to everyone connected: in a reconnect storm each user coming back
//! costs a frame per co-member's connection, not one per connection on the server.
//!
//! The hub's lock is a plain mutex: nothing under it awaits, and every send is a `try_send`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use smallvec::{SmallVec, smallvec};
use tidings_proto::v1::{
    LockReason, Message, MessageId, PresenceStatus, RoomId, ServerFrame, SessionId, UserId, UserRef,
};
use tokio::sync::mpsc;

use crate::delivery::{ChatFrame, Form, Live, Published};
use crate::outlet::{Batch, Offered, Outlet, Writes};

/// Why the server is closing a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The connection's send queue filled up.
    Lagging,
    /// The session ended.
    Locked(LockReason),
    /// A newer connection of the same session and lane took its place (a newer poll, a stream
    /// past the session's cap).
    Superseded,
    /// The server is shutting down.
    ShuttingDown,
}

/// How a connection counts for its user's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Not at all (the feed: it is open whether or not anyone chats).
    No,
    /// Online while it is open; offline the moment the user's last one closes (the WebSocket:
    /// its close is a clear goodbye).
    WhileOpen,
    /// Online while it is open, and for the hub's grace period after: a long-polling client is
    /// between two polls most of the time, a stream reopens after its size cut.
    WithGrace,
}

/// A kind of connection a session may hold only so many of at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Poll,
    Stream,
}

/// What a connection takes from the hub.
#[derive(Debug, Clone, Copy)]
pub struct Listener {
    /// Presence, typing and read markers.
    pub signals: bool,
    pub presence: Presence,
    /// At most this many of the session's connections in this lane: registering one more
    /// supersedes the oldest.
    pub per_session: Option<(Lane, usize)>,
}

/// A one-shot signal telling a connection's task to close, with the reason. One task waits on
/// it (the connection's), so it keeps one waker: waiting again, as the connection's loop does at
/// every wake-up, costs a comparison instead of a lock.
#[derive(Debug, Default)]
pub struct KickSignal {
    reason: OnceLock<Kick>,
    waker: AtomicWaker,
}

impl KickSignal {
    pub fn is_kicked(&self) -> bool {
        self.reason.get().is_some()
    }

    fn kick(&self, kick: Kick) {
        if self.reason.set(kick).is_ok() {
            self.waker.wake();
        }
    }

    /// The kick, once there is one (the connection has been kicked); until then `cx` is woken
    /// when it comes.
    pub fn poll_kicked(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Kick> {
        if let Some(kick) = self.reason.get() {
            return std::task::Poll::Ready(*kick);
        }
        self.waker.register(cx.waker());
        // Looked at again: a kick between the first look and the registration woke nobody.
        match self.reason.get() {
            Some(kick) => std::task::Poll::Ready(*kick),
            None => std::task::Poll::Pending,
        }
    }
}

/// A connection's queue: bounded, read by the connection alone. It holds pointers to the items,
/// and holds nothing at all while empty after a burst of more than a few (an idle connection, or
/// one the fan-out writes to itself, keeps no buffer).
#[derive(Debug, Default)]
pub struct Queue {
    items: Mutex<VecDeque<Arc<Live>>>,
    reader: AtomicWaker,
}

/// Room a drained queue keeps for the next items; beyond it, the buffer is let go.
const QUEUE_KEPT: usize = 8;

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Live>>> {
        // Plain data under the lock, consistent after any panic.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item`, unless `cap` items are queued already: answers whether it did.
    fn push(&self, item: &Arc<Live>, cap: usize) -> bool {
        {
            let mut items = self.lock();
            if items.len() >= cap {
                return false;
            }
            items.push_back(Arc::clone(item));
        }
        self.reader.wake();
        true
    }

    /// The first item queued, if any.
    pub fn try_pop(&self) -> Option<Arc<Live>> {
        let mut items = self.lock();
        let item = items.pop_front();
        if items.is_empty() && items.capacity() > QUEUE_KEPT {
            *items = VecDeque::new();
        }
        item
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The first item queued, once there is one; until then `cx` is woken when one is queued.
    pub fn poll_pop(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Arc<Live>> {
        if let Some(item) = self.try_pop() {
            return std::task::Poll::Ready(item);
        }
        self.reader.register(cx.waker());
        // Looked at again: an item queued between the first look and the registration woke
        // nobody.
        match self.try_pop() {
            Some(item) => std::task::Poll::Ready(item),
            None => std::task::Poll::Pending,
        }
    }
}

/// Where a connection's items go: its queue, or straight to its socket (see `crate::outlet`).
pub struct Route {
    queue: Queue,
    kicked: KickSignal,
    /// The connection's socket, which of the fan-out's tasks writes to it, and what.
    outlet: Option<(Arc<Outlet>, usize, Form)>,
    /// The queue's cap, and the outlet's backlog's.
    cap: u32,
    /// With an outlet, where its fan-out task's `Sweep` last gave it an entry: the entry's
    /// number, cut to 32 bits (kept small: every connection has a route). Only that task reads
    /// or writes it, and only as a hint: the entry there is the route's if it holds the route.
    sweep_slot: AtomicU32,
}

impl Route {
    /// Writes or queues `items`, in order, or, when the connection is too far behind, kicks it.
    fn deliver(&self, items: &[Arc<Live>]) {
        let cap = self.cap as usize;
        let queue = |item: &Arc<Live>| self.queue.push(item, cap);
        let keeps_up = match &self.outlet {
            Some((outlet, _, form)) => outlet.offer(items, *form, cap, queue),
            None => items.iter().all(queue),
        };
        if !keeps_up {
            self.kick(Kick::Lagging);
        }
    }

    /// As `deliver`, but a write to make now is handed back for a `Batch`.
    fn gather<'a>(&'a self, items: &'a [Arc<Live>]) -> Offered<'a> {
        let cap = self.cap as usize;
        let queue = |item: &Arc<Live>| self.queue.push(item, cap);
        match &self.outlet {
            Some((outlet, _, form)) => outlet.gather(items, *form, cap, queue),
            None => Offered::Done(items.iter().all(queue)),
        }
    }

    fn kick(&self, kick: Kick) {
        if let Some((outlet, ..)) = &self.outlet {
            outlet.stop();
        }
        self.kicked.kick(kick);
    }
}

/// What a fan-out task is handed.
enum Job {
    /// An item for one connection.
    One(Arc<Route>, Arc<Live>),
    /// An item for many.
    Many(Arc<Live>, Vec<Arc<Route>>),
}

/// A fan-out task's inbox.
type Shard = mpsc::UnboundedSender<Job>;

/// Connections a fan-out task writes to before it looks for newer jobs (and, once behind, lets
/// its worker run other tasks): as many as a `Batch` writes at once.
const SWEEP_SLICE: usize = crate::outlet::BATCH;

/// How long a fan-out task that has fallen behind works before it rests, and how long it rests,
/// as a share of that. See `fan_out`.
const BEHIND_WORK: Duration = Duration::from_millis(10);
const BEHIND_REST_SHARE: u32 = 2;

/// A connection's items waiting in a `Sweep`: mostly one.
type Items = SmallVec<[Arc<Live>; 2]>;

/// What a fan-out task has yet to write: each connection once, with all its items, in the order
/// its first waiting item came.
#[derive(Default)]
struct Sweep {
    waiting: VecDeque<(Arc<Route>, Items)>,
    /// Entries written so far: the front of `waiting` is entry number `written`.
    written: u64,
}

impl Sweep {
    fn take(&mut self, job: Job) {
        match job {
            Job::One(route, item) => self.add(route, item),
            Job::Many(item, routes) => {
                for route in routes {
                    self.add(route, Arc::clone(&item));
                }
            }
        }
    }

    /// Adds `item` to `route`'s waiting entry, or gives the route one at the back.
    fn add(&mut self, route: Arc<Route>, item: Arc<Live>) {
        // The slot points at the route's newest entry; once that is written (or after 2^32
        // entries), at another route's or past the end.
        let slot = route.sweep_slot.load(Ordering::Relaxed);
        let at = slot.wrapping_sub(self.written as u32) as usize;
        match self.waiting.get_mut(at) {
            Some((held, items)) if Arc::ptr_eq(held, &route) => items.push(item),
            _ => {
                let slot = (self.written + self.waiting.len() as u64) as u32;
                route.sweep_slot.store(slot, Ordering::Relaxed);
                self.waiting.push_back((route, smallvec![item]));
            }
        }
    }

    /// Writes to the next slice of connections.
    fn write_slice(&mut self, batch: &mut Option<Batch>) {
        let count = self.waiting.len().min(SWEEP_SLICE);
        let slice: SmallVec<[(Arc<Route>, Items); SWEEP_SLICE]> =
            self.waiting.drain(..count).collect();
        self.written += count as u64;
        deliver_all(
            batch,
            slice.iter().map(|(route, items)| (&**route, &items[..])),
        );
    }
}

/// Delivers to a slice of connections (at most `SWEEP_SLICE`): the writes to make now in one
/// system call with a `Batch`, else each by itself.
fn deliver_all<'a>(
    batch: &mut Option<Batch>,
    slice: impl Iterator<Item = (&'a Route, &'a [Arc<Live>])>,
) {
    let Some(batch) = batch else {
        slice.for_each(|(route, items)| route.deliver(items));
        return;
    };
    let mut routes: SmallVec<[&Route; SWEEP_SLICE]> = SmallVec::new();
    let mut writes = Writes::new();
    for (route, items) in slice {
        match route.gather(items) {
            Offered::Done(true) => {}
            Offered::Done(false) => route.kick(Kick::Lagging),
            Offered::Write(write) => {
                routes.push(route);
                writes.push(write);
            }
        }
    }
    if !writes.is_empty() {
        batch.write(&mut writes, |i| routes[i].kick(Kick::Lagging));
    }
}

/// A fan-out task: writes what it is handed to its connections, each connection's items in
/// order. Its writes never wait (what a socket does not take goes to its backlog), so it runs
/// on the runtime's workers like any task, one per core at once.
///
/// It works through its connections in slices, and jobs that come meanwhile join the sweep: a
/// connection not yet written to gets every item waiting for it in one write, one already
/// written to gets the newer ones in its next turn. So a message reaches the last connection
/// within about one turn however fast messages come, and the busier the room, the more each
/// write carries.
///
/// A task that has fallen behind (a job came while connections still waited) rests, after
/// each 10 ms of work, half as long. What comes meanwhile is written with what waits, so each
/// write carries more and every connection is written to fewer times, and the rest of the
/// machine — the connections' own tasks, the store, and on a machine that also runs the
/// clients, the clients reading — keeps a third of the time the fan-out would take. Never
/// while keeping up, and never under a paused test clock (work then takes no time).
async fn fan_out(mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut batch = match Batch::new() {
        Ok(batch) => Some(batch),
        Err(err) => {
            tracing::debug!(%err, "no io_uring: the fan-out writes each socket by itself");
            None
        }
    };
    let mut sweep = Sweep::default();
    // Time worked since the task fell behind or last rested, once it has.
    let mut behind: Option<Duration> = None;
    loop {
        if sweep.waiting.is_empty() {
            behind = None;
            match jobs.recv().await {
                // Keeping up (the common case): straight from the job's list, until another
                // job comes; the connections not written to yet then join the sweep. No yield
                // here: the feeds' own tasks (their status events) would come between the
                // slices, and the p99 at 10/s to 10,000 feeds went 73-89 -> 91-99 ms with one.
                Some(Job::Many(item, mut routes)) => {
                    let mut at = 0;
                    while at < routes.len() {
                        if !jobs.is_empty() {
                            for route in routes.drain(at..) {
                                sweep.add(route, Arc::clone(&item));
                            }
                            break;
                        }
                        let end = routes.len().min(at + SWEEP_SLICE);
                        let items = std::slice::from_ref(&item);
                        let slice = routes[at..end].iter().map(|route| (&**route, items));
                        deliver_all(&mut batch, slice);
                        at = end;
                    }
                    continue;
                }
                Some(job) => sweep.take(job),
                None => return,
            }
        }
        while let Ok(job) = jobs.try_recv() {
            if !sweep.waiting.is_empty() {
                behind.get_or_insert(Duration::ZERO);
            }
            sweep.take(job);
        }
        let started = tokio::time::Instant::now();
        sweep.write_slice(&mut batch);
        if sweep.waiting.is_empty() {
            continue;
        }
        if let Some(worked) = &mut behind {
            *worked += started.elapsed();
            if *worked >= BEHIND_WORK {
                tokio::time::sleep(*worked / BEHIND_REST_SHARE).await;
                *worked = Duration::ZERO;
                continue;
            }
        }
        tokio::task::yield_now().await;
    }
}

struct Conn {
    id: u64,
    session: SessionId,
    route: Arc<Route>,
    /// Takes presence, typing and read markers.
    signals: bool,
    /// Counts its user as online.
    presence: bool,
    lane: Option<Lane>,
}

#[derive(Default)]
struct Inner {
    /// Live connections by user.
    conns: HashMap<UserId, Vec<Conn>>,
    /// Users with at least one live connection that counts for presence, or in the grace period
    /// after their last one that has one.
    online: HashMap<UserId, UserRef>,
    /// Users online only by grace, with the number of the grace period (a newer one replaces it).
    lingering: HashMap<UserId, u64>,
    next_linger: u64,
    /// Members by room.
    rooms: HashMap<RoomId, Vec<UserId>>,
    /// Rooms by member: the other side of `rooms`.
    memberships: HashMap<UserId, Vec<RoomId>>,
    /// Users online on other nodes of a cluster, with the nodes (see `presence`): a user is
    /// online when online here or there.
    remote: HashMap<UserId, (UserRef, HashSet<String>)>,
    /// Where this node's own presence changes and typing go for the other nodes, in a cluster.
    announce: Option<mpsc::UnboundedSender<Announce>>,
    /// Set once the server is shutting down: a connection registered from then on is kicked at
    /// once.
    shutting_down: bool,
    /// The fan-out's tasks, one per core: a connection's items are written by the one its id
    /// picks, so a big room's message is written by every core at once, and in order on each
    /// connection. Jobs are handed to them under the lock, in its order.
    shards: Vec<Shard>,
}

impl Inner {
    /// The users who share a room with `user`, `user` included.
    fn co_members(&self, user: UserId) -> HashSet<UserId> {
        let mut users = HashSet::from([user]);
        for room in self.memberships.get(&user).into_iter().flatten() {
            users.extend(self.rooms.get(room).into_iter().flatten());
        }
        users
    }
}

/// What a node tells the other nodes of a cluster (see `presence`): ephemeral, so not in the
/// store's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Announce {
    /// `user` came online (or went offline) on the announcing node.
    Presence { user: UserRef, online: bool },
    /// `user` is typing in `room`.
    Typing { room: RoomId, user: UserRef },
}

/// Live connections and room membership, shared by every request.
pub struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    queue: usize,
    /// How long a user stays online after their last [`Presence::WithGrace`] connection ends.
    grace: Duration,
    /// The newest message id published: see [`Hub::latest_id`].
    latest: AtomicI64,
}

/// A connection's place in the hub; dropping it takes the connection out (and, for a user's last
/// connection that counts for presence, tells the others the user went offline).
pub struct Registration {
    hub: Arc<Hub>,
    user: UserRef,
    id: u64,
    presence: Presence,
    route: Arc<Route>,
}

impl Registration {
    pub fn kick(&self) -> &KickSignal {
        &self.route.kicked
    }

    pub fn queue(&self) -> &Queue {
        &self.route.queue
    }

    /// Whether its items go through a fan-out task (it has an outlet): they then reach its
    /// queue after the hub's newest id has moved past them.
    pub fn fanned_out(&self) -> bool {
        self.route.outlet.is_some()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Nothing is written to the socket for this connection any more: its task ends.
        if let Some((outlet, ..)) = &self.route.outlet {
            outlet.stop();
        }
        let mut inner = self.hub.lock();
        let mut went_offline = false;
        if let Some(list) = inner.conns.get_mut(&self.user.id) {
            list.retain(|c| c.id != self.id);
            went_offline = self.presence != Presence::No && !list.iter().any(|c| c.presence);
            if list.is_empty() {
                inner.conns.remove(&self.user.id);
            }
        }
        if !went_offline {
            return;
        }
        let runtime = tokio::runtime::Handle::try_current();
        match (self.presence, runtime) {
            (Presence::WithGrace, Ok(runtime)) if !self.hub.grace.is_zero() => {
                inner.next_linger += 1;
                let linger = inner.next_linger;
                inner.lingering.insert(self.user.id, linger);
                let (hub, user, grace) = (self.hub.clone(), self.user.id, self.hub.grace);
                runtime.spawn(async move {
                    tokio::time::sleep(grace).await;
                    hub.grace_over(user, linger);
                });
            }
            _ => Hub::offline(&mut inner, &self.user),
        }
    }
}

impl Hub {
    /// A hub knowing every `(room, user)` membership; `queue` is each connection's queue cap.
    /// `grace` is how long a user stays online after their last connection that polls or
    /// streams has ended.
    /// `latest` is the newest message id in the store.
    pub fn new(
        memberships: Vec<(RoomId, UserId)>,
        latest: MessageId,
        queue: usize,
        grace: Duration,
    ) -> Hub {
        let mut inner = Inner::default();
        for (room, user) in memberships {
            inner.rooms.entry(room).or_default().push(user);
            inner.memberships.entry(user).or_default().push(room);
        }
        // Outside a runtime (a hub built for a test of its own), none: everything is queued.
        let shards = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                (0..cores)
                    .map(|_| {
                        let (shard, jobs) = mpsc::unbounded_channel();
                        runtime.spawn(fan_out(jobs));
                        shard
                    })
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        Hub {
            inner: Mutex::new(Inner { shards, ..inner }),
            next_id: AtomicU64::new(1),
            queue: queue.max(1),
            grace,
            latest: AtomicI64::new(latest),
        }
    }

    /// The user's last connection ended `linger` ago: offline, unless one opened since.
    fn grace_over(&self, user: UserId, linger: u64) {
        let mut inner = self.lock();
        if inner.lingering.get(&user) != Some(&linger) {
            return;
        }
        inner.lingering.remove(&user);
        let back = inner
            .conns
            .get(&user)
            .into_iter()
            .flatten()
            .any(|c| c.presence);
        if let (false, Some(who)) = (back, inner.online.get(&user).cloned()) {
            Hub::offline(&mut inner, &who);
        }
    }

    /// Takes `user` offline and tells the people who can see it.
    fn offline(inner: &mut Inner, user: &UserRef) {
        inner.lingering.remove(&user.id);
        if inner.online.remove(&user.id).is_some() {
            Hub::announce(inner, user, false);
            if !inner.remote.contains_key(&user.id) {
                Hub::presence(inner, user, PresenceStatus::Offline);
            }
        }
    }

    /// Tells the other nodes, if any, that `user` came online or went offline here.
    fn announce(inner: &Inner, user: &UserRef, online: bool) {
        Hub::announce_locked(
            inner,
            Announce::Presence {
                user: user.clone(),
                online,
            },
        );
    }

    fn announce_locked(inner: &Inner, what: Announce) {
        if let Some(announce) = &inner.announce {
            // The receiver ends only with the server.
            let _ = announce.send(what);
        }
    }

    /// Sends this node's presence changes and typing to `announce` from now on (for the other
    /// nodes of a cluster).
    pub fn announce_to(&self, announce: mpsc::UnboundedSender<Announce>) {
        self.lock().announce = Some(announce);
    }

    /// `user` is typing in `room`: tells the room's other members here, and the other nodes.
    pub fn typing(&self, room: RoomId, user: &UserRef) {
        self.to_room(
            room,
            Some(user.id),
            &ServerFrame::Typing {
                room,
                user: user.clone(),
            },
        );
        Hub::announce_locked(
            &self.lock(),
            Announce::Typing {
                room,
                user: user.clone(),
            },
        );
    }

    /// Who is online on this node (connections and grace).
    pub fn online_here(&self) -> Vec<UserRef> {
        self.lock().online.values().cloned().collect()
    }

    /// Another node says `user` came online (or went offline) there.
    pub fn remote_presence(&self, node: &str, user: UserRef, online: bool) {
        let mut inner = self.lock();
        let was = inner.remote.contains_key(&user.id);
        if online {
            let entry = inner
                .remote
                .entry(user.id)
                .or_insert_with(|| (user.clone(), HashSet::new()));
            entry.1.insert(node.to_owned());
        } else if let Some((_, nodes)) = inner.remote.get_mut(&user.id) {
            nodes.remove(node);
            if nodes.is_empty() {
                inner.remote.remove(&user.id);
            }
        }
        let is = inner.remote.contains_key(&user.id);
        if was != is && !inner.online.contains_key(&user.id) {
            let status = if is {
                PresenceStatus::Online
            } else {
                PresenceStatus::Offline
            };
            Hub::presence(&inner, &user, status);
        }
    }

    /// Replaces what this node knows of the others' presence with a full picture (read after a
    /// reconnect, and on each tick: it catches changes whose events were missed and nodes that
    /// died), announcing each user whose presence changes by it.
    pub fn remote_snapshot(&self, snapshot: HashMap<UserId, (UserRef, HashSet<String>)>) {
        let mut inner = self.lock();
        let old = std::mem::replace(&mut inner.remote, snapshot);
        let mut changed: Vec<(UserRef, PresenceStatus)> = Vec::new();
        for (id, (user, _)) in &old {
            if !inner.remote.contains_key(id) {
                changed.push((user.clone(), PresenceStatus::Offline));
            }
        }
        for (id, (user, _)) in &inner.remote {
            if !old.contains_key(id) {
                changed.push((user.clone(), PresenceStatus::Online));
            }
        }
        for (user, status) in changed {
            if !inner.online.contains_key(&user.id) {
                Hub::presence(&inner, &user, status);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind, still consistent enough to
        // keep serving; refusing all further fan-out would be worse.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server is shutting down: every connection is told (it ends once it has written what
    /// is queued), and so is any that registers from now on.
    pub fn shut_down(&self) {
        let mut inner = self.lock();
        inner.shutting_down = true;
        for conn in inner.conns.values().flatten() {
            conn.route.kick(Kick::ShuttingDown);
        }
    }

    /// Adds a connection of `session`; the first of a user's connections that counts for
    /// presence announces them online (unless they still are, by grace). Its queue is the registration's.
    /// With an `outlet`, the fan-out writes to its socket whenever the outlet lets it.
    pub fn register(
        self: &Arc<Self>,
        user: &UserRef,
        session: SessionId,
        listener: Listener,
        outlet: Option<(Arc<Outlet>, Form)>,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let presence = listener.presence != Presence::No;
        let mut inner = self.lock();
        let shards = inner.shards.len();
        let route = Arc::new(Route {
            queue: Queue::default(),
            kicked: KickSignal::default(),
            outlet: outlet
                .filter(|_| shards > 0)
                .map(|(outlet, form)| (outlet, id as usize % shards.max(1), form)),
            cap: u32::try_from(self.queue).unwrap_or(u32::MAX),
            sweep_slot: AtomicU32::new(0),
        });
        let list = inner.conns.entry(user.id).or_default();
        if let Some((lane, max)) = listener.per_session {
            let mut same = list.iter().filter(|c| {
                c.session == session && c.lane == Some(lane) && !c.route.kicked.is_kicked()
            });
            let excess = same.clone().count().saturating_sub(max.saturating_sub(1));
            for older in same.by_ref().take(excess) {
                older.route.kick(Kick::Superseded);
            }
        }
        if inner.shutting_down {
            route.kick(Kick::ShuttingDown);
        }
        let conn = Conn {
            id,
            session,
            route: Arc::clone(&route),
            signals: listener.signals,
            presence,
            lane: listener.per_session.map(|(lane, _)| lane),
        };
        if presence {
            inner.lingering.remove(&user.id);
            // Announced before the connection is in the list: it learns who is online from its
            // own opening (the hello), and a held poll is not answered with its own arrival.
            if inner.online.insert(user.id, user.clone()).is_none() {
                Hub::announce(&inner, user, true);
                if !inner.remote.contains_key(&user.id) {
                    Hub::presence(&inner, user, PresenceStatus::Online);
                }
            }
        }
        inner.conns.entry(user.id).or_default().push(conn);
        Registration {
            hub: self.clone(),
            user: user.clone(),
            id,
            presence: listener.presence,
            route,
        }
    }

    /// Of the users who share a room with `user` (and `user`), those online, ascending.
    pub fn online(&self, user: UserId) -> Vec<UserId> {
        let inner = self.lock();
        let mut users: Vec<UserId> = inner
            .co_members(user)
            .into_iter()
            .filter(|u| inner.online.contains_key(u) || inner.remote.contains_key(u))
            .collect();
        users.sort_unstable();
        users
    }

    /// Number of live connections of every kind.
    pub fn connections(&self) -> usize {
        self.lock().conns.values().map(Vec::len).sum()
    }

    /// `user` is now a member of `room`, for the fan-out (before the store has the membership,
    /// so that nothing committed after the join is missed).
    pub fn joined(&self, room: RoomId, user: UserId) {
        let mut inner = self.lock();
        let members = inner.rooms.entry(room).or_default();
        if !members.contains(&user) {
            members.push(user);
            inner.memberships.entry(user).or_default().push(room);
        }
    }

    /// Tells `user` and the room's other members that are online of each other. Only once the
    /// store has the membership: a join it refuses (someone else's DM) must reveal nothing.
    pub fn introduce(&self, room: RoomId, user: UserId) {
        let inner = self.lock();
        let Some(members) = inner.rooms.get(&room) else {
            return;
        };
        let presence = |user: &UserRef| {
            signal(&ServerFrame::Presence {
                user: user.clone(),
                status: PresenceStatus::Online,
            })
        };
        let joiner = inner.online.get(&user).map(presence);
        for member in members.iter().filter(|m| **m != user) {
            if let Some(online) = inner.online.get(member) {
                Hub::to_user_locked(&inner, user, &presence(online));
            }
            if let Some(joiner) = &joiner {
                Hub::to_user_locked(&inner, *member, joiner);
            }
        }
    }

    pub fn left(&self, room: RoomId, user: UserId) {
        let mut inner = self.lock();
        if let Some(members) = inner.rooms.get_mut(&room) {
            members.retain(|u| *u != user);
        }
        if let Some(rooms) = inner.memberships.get_mut(&user) {
            rooms.retain(|r| *r != room);
        }
    }

    /// Sends a committed message to every live connection of every member of its room. Called
    /// from the store's writer thread, in commit order, so each queue receives ids ascending.
    pub fn publish_message(&self, message: Message) {
        let room = message.room;
        self.publish(room, Published::new(message));
    }

    /// Sends a committed change to a message (`id`, its place in the log) like a message.
    pub fn publish_changed(&self, id: MessageId, message: Message) {
        let room = message.room;
        self.publish(room, Published::changed(id, message));
    }

    fn publish(&self, room: RoomId, published: Published) {
        let id = published.id();
        let live = Arc::new(Live::Message(published));
        let inner = self.lock();
        let mut shards: Vec<Vec<Arc<Route>>> = vec![Vec::new(); inner.shards.len()];
        for user in inner.rooms.get(&room).into_iter().flatten() {
            for conn in inner.conns.get(user).into_iter().flatten() {
                match &conn.route.outlet {
                    Some((_, shard, _)) => shards[*shard].push(Arc::clone(&conn.route)),
                    None => conn.route.deliver(std::slice::from_ref(&live)),
                }
            }
        }
        for (shard, routes) in inner.shards.iter().zip(shards) {
            if !routes.is_empty() {
                hand(shard, Job::Many(Arc::clone(&live), routes));
            }
        }
        // After the queues: a connection that reads the newest id and then drains its queue has
        // every message of its up to that id.
        self.latest.fetch_max(id, Ordering::Release);
    }

    /// The newest message published (or in the store when the server started). Every message
    /// up to it has been offered to the queues registered when it was published.
    pub fn latest_id(&self) -> MessageId {
        self.latest.load(Ordering::Acquire)
    }

    /// Sends a signal (presence, typing, read) to the connections of a room's members that take
    /// signals, but not to `except`.
    pub fn to_room(&self, room: RoomId, except: Option<UserId>, frame: &ServerFrame) {
        let bytes = signal(frame);
        let inner = self.lock();
        let Some(members) = inner.rooms.get(&room) else {
            return;
        };
        for user in members.iter().filter(|u| Some(**u) != except) {
            Hub::to_user_locked(&inner, *user, &bytes);
        }
    }

    /// Sends a signal to every connection of one user that takes signals.
    pub fn to_user(&self, user: UserId, frame: &ServerFrame) {
        let bytes = signal(frame);
        Hub::to_user_locked(&self.lock(), user, &bytes);
    }

    fn to_user_locked(inner: &Inner, user: UserId, out: &Arc<Live>) {
        for conn in inner.conns.get(&user).into_iter().flatten() {
            if conn.signals {
                offer(inner, &conn.route, out);
            }
        }
    }

    fn presence(inner: &Inner, user: &UserRef, status: PresenceStatus) {
        let bytes = signal(&ServerFrame::Presence {
            user: user.clone(),
            status,
        });
        for other in inner.co_members(user.id) {
            Hub::to_user_locked(inner, other, &bytes);
        }
    }

    /// Closes every connection of a session that has ended.
    pub fn lock_session(&self, user: UserId, session: SessionId, reason: LockReason) {
        let inner = self.lock();
        for conn in inner.conns.get(&user).into_iter().flatten() {
            if conn.session == session {
                conn.route.kick(Kick::Locked(reason));
            }
        }
    }
}

/// Hands `item` to a connection: to its fan-out task when it has an outlet (the write may be
/// a syscall, and the hub's lock is held), else into its queue now.
fn offer(inner: &Inner, route: &Arc<Route>, item: &Arc<Live>) {
    match &route.outlet {
        Some((_, shard, _)) => hand(
            &inner.shards[*shard],
            Job::One(Arc::clone(route), Arc::clone(item)),
        ),
        None => route.deliver(std::slice::from_ref(item)),
    }
}

/// Hands a fan-out task a job; should the task be gone (it panicked), does it here.
fn hand(shard: &Shard, job: Job) {
    if let Err(unsent) = shard.send(job) {
        match unsent.0 {
            Job::One(route, item) => route.deliver(&[item]),
            Job::Many(item, routes) => routes
                .iter()
                .for_each(|r| r.deliver(std::slice::from_ref(&item))),
        }
    }
}

/// A frame other than `message`, ready for the queues.
fn signal(frame: &ServerFrame) -> Arc<Live> {
    Arc::new(Live::Signal(ChatFrame::new(frame)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Arc<Route> {
        Arc::new(Route {
            queue: Queue::default(),
            kicked: KickSignal::default(),
            outlet: None,
            cap: 100,
            sweep_slot: AtomicU32::new(0),
        })
    }

    /// A route whose outlet is the server's end of a loopback connection, open to the fan-out;
    /// with the client's end.
    async fn route_to_socket(cap: u32) -> (Arc<Route>, tokio::net::TcpStream) {
        route_to_socket_in(cap, Form::Chat).await
    }

    async fn route_to_socket_in(cap: u32, form: Form) -> (Arc<Route>, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let outlet = Arc::new(Outlet::new(server));
        assert_eq!(outlet.release(0, || true), crate::outlet::Release::Direct);
        let route = Arc::new(Route {
            outlet: Some((outlet, 0, form)),
            cap,
            ..Arc::into_inner(route()).unwrap()
        });
        (route, client)
    }

    /// Reads exactly `len` bytes, bounded in time.
    async fn read_exactly(client: &mut tokio::net::TcpStream, len: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut got = vec![0; len];
        tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut got))
            .await
            .expect("the bytes in time")
            .unwrap();
        got
    }

    #[tokio::test]
    async fn a_batch_writes_each_socket_its_frames_in_order_and_keeps_what_one_refuses() {
        let mut batch = Some(Batch::new().unwrap());
        let items: Vec<Arc<Live>> = (0..4).map(item).collect();
        let wire = |items: &[Arc<Live>]| -> Vec<u8> {
            items.iter().flat_map(|i| i.wire().to_vec()).collect()
        };
        let (open, mut open_client) = route_to_socket(100).await;
        let (full, mut full_client) = route_to_socket(3).await;
        // The second socket takes nothing more: its buffers are full of bytes of its own (and
        // what its outlet kept of them is dropped, so its backlog is empty).
        let full_outlet = &full.outlet.as_ref().unwrap().0;
        let mut taken = 0;
        for chunk in [64 * 1024, 1] {
            for _ in 0..100_000 {
                full_outlet.write(&vec![0u8; chunk]).unwrap();
                let kept = full_outlet.take_backlog().len();
                taken += chunk - kept;
                if kept > 0 {
                    break;
                }
            }
        }
        let slice = [(&*open, &items[..2]), (&*full, &items[..2])];
        deliver_all(&mut batch, slice.into_iter());
        // Behind, within its cap: kept after what waits.
        let slice = [(&*open, &items[2..3]), (&*full, &items[2..3])];
        deliver_all(&mut batch, slice.into_iter());
        assert!(!full.kicked.is_kicked());
        let slice = [(&*open, &items[3..]), (&*full, &items[3..])];
        deliver_all(&mut batch, slice.into_iter());

        // The open socket has all four frames, in order.
        assert_eq!(
            read_exactly(&mut open_client, wire(&items).len()).await,
            wire(&items)
        );
        assert!(!open.kicked.is_kicked());
        // The full one kept what it refused, up to its cap of three frames, and is kicked as
        // lagging at the fourth.
        assert!(full.kicked.is_kicked());
        assert_eq!(full_outlet.take_backlog(), wire(&items[..3]));
        // The bytes the socket took before are intact.
        let head = read_exactly(&mut full_client, taken).await;
        assert!(head.iter().all(|&b| b == 0));
    }

    #[tokio::test]
    async fn a_stream_is_written_each_message_as_a_batch_and_signals_at_its_cursor() {
        use crate::batch::Format;
        use tidings_proto::v1::{Batch, Message};

        let message = |id: i64| {
            let message: Message = serde_json::from_value(serde_json::json!({
                "id": id, "room": 1, "author": {"id": 2, "name": "ann"},
                "body": format!("message {id}"), "sent_at": 0,
            }))
            .unwrap();
            Arc::new(Live::Message(Published::new(message)))
        };
        let (route, mut client) = route_to_socket_in(100, Form::Stream(Format::Sse)).await;
        let items = [
            item(1),
            message(7),
            item(2),
            message(5),
            message(9),
            item(3),
        ];
        // With signals among them (each made for the connection), and messages alone (shared).
        for part in [&items[..2], &items[2..3], &items[3..5], &items[5..]] {
            route.deliver(part);
        }
        let (Live::Message(seven), Live::Message(nine)) = (&*items[1], &*items[4]) else {
            unreachable!()
        };
        // A message's batch is made once, for every stream of its format.
        assert!(std::ptr::eq(
            seven.stream(Format::Sse),
            seven.stream(Format::Sse)
        ));
        let expected: Vec<u8> = [
            Format::Sse.encode(0, std::slice::from_ref(items[0].text())),
            seven.stream(Format::Sse).clone(),
            Format::Sse.encode(7, std::slice::from_ref(items[2].text())),
            // 5 is behind the cursor: not written.
            nine.stream(Format::Sse).clone(),
            Format::Sse.encode(9, std::slice::from_ref(items[5].text())),
        ]
        .concat();
        let got = read_exactly(&mut client, expected.len()).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
        // Each is a batch of one frame, its cursor the stream's after it.
        let cursors: Vec<i64> = String::from_utf8(got)
            .unwrap()
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|json| {
                let batch: Batch = serde_json::from_str(json).unwrap();
                assert_eq!(batch.frames.len(), 1);
                batch.cursor
            })
            .collect();
        assert_eq!(cursors, [0, 7, 7, 9, 9]);
    }

    fn item(n: i64) -> Arc<Live> {
        signal(&ServerFrame::Read {
            room: 1,
            user: 1,
            message_id: n,
        })
    }

    /// What `route` was written, in order, as the items' numbers.
    fn written(route: &Route, items: &[Arc<Live>]) -> Vec<usize> {
        std::iter::from_fn(|| route.queue.try_pop())
            .map(|got| items.iter().position(|i| Arc::ptr_eq(i, &got)).unwrap())
            .collect()
    }

    #[test]
    fn a_sweep_writes_each_connection_once_with_everything_waiting_in_order() {
        // Each write by itself, and gathered into batches.
        for batch in [None, Some(Batch::new().unwrap())] {
            let mut batch = batch;
            sweep_from(0, &mut batch);
            // The routes' slots wrap around in the middle.
            sweep_from(u64::from(u32::MAX) - 20, &mut batch);
        }
    }

    fn sweep_from(start: u64, batch: &mut Option<Batch>) {
        let routes: Vec<Arc<Route>> = (0..SWEEP_SLICE + 10).map(|_| route()).collect();
        let items: Vec<Arc<Live>> = (0..5).map(item).collect();
        let mut sweep = Sweep {
            written: start,
            ..Sweep::default()
        };
        sweep.take(Job::Many(Arc::clone(&items[0]), routes.clone()));
        sweep.take(Job::One(Arc::clone(&routes[3]), Arc::clone(&items[1])));
        // The first slice written, then a message for everyone and one for the first.
        sweep.write_slice(batch);
        sweep.take(Job::Many(Arc::clone(&items[2]), routes.clone()));
        sweep.take(Job::One(Arc::clone(&routes[0]), Arc::clone(&items[3])));
        assert_eq!(sweep.waiting.len(), routes.len());
        // The rest of the first turn, and the second turn of those the first slice had.
        sweep.take(Job::Many(Arc::clone(&items[4]), routes.clone()));
        while !sweep.waiting.is_empty() {
            sweep.write_slice(batch);
        }

        assert_eq!(written(&routes[0], &items), [0, 2, 3, 4]);
        assert_eq!(written(&routes[3], &items), [0, 1, 2, 4]);
        assert_eq!(written(&routes[SWEEP_SLICE - 1], &items), [0, 2, 4]);
        // Not reached by the first slice: everything in its first turn.
        assert_eq!(written(&routes[SWEEP_SLICE], &items), [0, 2, 4]);
        assert_eq!(written(&routes[SWEEP_SLICE + 9], &items), [0, 2, 4]);
        assert_eq!(sweep.written, start + (2 * SWEEP_SLICE + 10) as u64);
    }
}
