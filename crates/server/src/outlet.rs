//! A connection's socket, written from outside its task: a WebSocket's on plain TCP, or a feed's
//! or an HTTP stream's the listener serves itself.
//!
//! The fan-out writes a message's frame (or feed event, or stream batch: `delivery::Form`) to each
//! such socket itself instead of queueing it and waking the connection's task: one non-blocking
//! write of the bytes encoded once for everyone, nothing scheduled, and a [`Batch`] makes the
//! writes to many sockets in one system call. What the socket does not take goes to the outlet's
//! backlog, in order, and the connection's task is woken to write it as the socket drains; a
//! backlog past the connection's queue cap means the connection has fallen too far behind, and
//! it is kicked as lagging, as a full queue would be.
//!
//! Every byte for the socket goes through the outlet's lock — the fan-out's frames and the task's
//! own (the hello, acks, sync pages, pings, pongs, the close) — and each write is of whole
//! frames, taken whole (what the socket refuses is kept): frames never interleave, and each
//! connection gets them in the order they were written.
//!
//! The fan-out writes only while the task lets it (`direct`): from after the hello (the feed's
//! opening), except while the task answers a `sync` (its replay and `synced` are written in
//! line, as before), until the task has written what was queued meanwhile. The rest of the time, and once the connection is
//! kicked or its subscription is gone, items go to the connection's queue as for every other
//! transport.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;
use io_uring::{IoUring, opcode, types};
use smallvec::SmallVec;
use tidings_proto::v1::MessageId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::delivery::{Form, Live};

/// Frames written in one syscall at most.
const WRITE_AT_ONCE: usize = 64;

/// See the module documentation.
#[derive(Debug)]
pub struct Outlet {
    stream: TcpStream,
    state: Mutex<State>,
    /// The connection's task, woken when the fan-out leaves a backlog.
    backlogged: AtomicWaker,
}

#[derive(Debug, Default)]
struct State {
    /// The fan-out may write here itself.
    direct: bool,
    /// The connection was kicked, or its subscription is gone: never direct again.
    stopped: bool,
    /// Every message up to here has been written or handed to the task (or the client had it).
    high_water: MessageId,
    /// Whole frames (the first maybe partly written) the socket has not taken yet.
    backlog: VecDeque<Bytes>,
}

/// What asking for direct writes came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The fan-out writes here from now on.
    Direct,
    /// The queue has items: write them first.
    Queued,
    /// The connection is ending.
    Stopped,
}

impl Outlet {
    pub fn new(stream: TcpStream) -> Outlet {
        Outlet {
            stream,
            state: Mutex::new(State::default()),
            backlogged: AtomicWaker::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain data under the lock, consistent after any panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `items` to the socket, in one write, when the fan-out may; else hands each to
    /// `queue` (which answers whether it had room), under the lock, so the task's switch to
    /// direct writes sees them. `cap` bounds the backlog in frames. Answers false when the
    /// connection is too far behind.
    pub fn offer(
        &self,
        items: &[Arc<Live>],
        form: Form,
        cap: usize,
        queue: impl FnMut(&Arc<Live>) -> bool,
    ) -> bool {
        let mut state = self.lock();
        if !state.direct {
            return items.iter().all(queue);
        }
        let mut woken = false;
        for chunk in items.chunks(WRITE_AT_ONCE) {
            // Bytes made for this connection (a stream's signals) are kept here while written.
            let made: Vec<Bytes>;
            let per_connection = form.makes_any(chunk);
            let mut fresh = chunk
                .iter()
                .filter_map(|item| fresh(&mut state, item, form));
            // One item (the common case: the fan-out keeps up) needs no lists.
            let frames: Vec<&Bytes> = match chunk {
                _ if per_connection => {
                    drop(fresh);
                    made = chunk
                        .iter()
                        .filter_map(|item| fresh_made(&mut state, item, form))
                        .collect();
                    made.iter().collect()
                }
                [_] => match fresh.next() {
                    Some(frame) => {
                        match self.write_now(&mut state, &[IoSlice::new(frame)], cap, |_| frame) {
                            Ok(backlogged) => woken |= backlogged,
                            Err(keeps_up) => return keeps_up,
                        }
                        continue;
                    }
                    None => continue,
                },
                _ => fresh.collect(),
            };
            let slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
            match self.write_now(&mut state, &slices, cap, |i| frames[i]) {
                Ok(backlogged) => woken |= backlogged,
                Err(keeps_up) => return keeps_up,
            }
        }
        drop(state);
        if woken {
            self.backlogged.wake();
        }
        true
    }

    /// Writes `frames` now, after the backlog: what the socket does not take is kept
    /// (`frame(i)` is the `i`th frame, to keep). Answers whether the backlog was empty and is
    /// no more, or, when the connection is to be written to no more, whether it keeps up.
    fn write_now<'a>(
        &self,
        state: &mut State,
        frames: &[IoSlice<'_>],
        cap: usize,
        frame: impl Fn(usize) -> &'a Bytes,
    ) -> Result<bool, bool> {
        let written = if state.backlog.is_empty() {
            self.stream.try_write_vectored(frames)
        } else {
            Ok(0)
        };
        settle(state, frames.len(), written, cap, frame)
    }

    /// As [`Outlet::offer`], but a write to make now is handed back for a [`Batch`] to make
    /// with others' (the lock held until then), not made.
    pub fn gather<'a>(
        &'a self,
        items: &'a [Arc<Live>],
        form: Form,
        cap: usize,
        queue: impl FnMut(&Arc<Live>) -> bool,
    ) -> Offered<'a> {
        if items.len() > WRITE_AT_ONCE || form.makes_any(items) {
            return Offered::Done(self.offer(items, form, cap, queue));
        }
        let mut state = self.lock();
        if !state.direct {
            return Offered::Done(items.iter().all(queue));
        }
        let frames: SmallVec<[&Bytes; 2]> = items
            .iter()
            .filter_map(|item| fresh(&mut state, item, form))
            .collect();
        if frames.is_empty() {
            return Offered::Done(true);
        }
        if !state.backlog.is_empty() {
            // After the backlog: nothing to write now (and no wake-up: the task has one).
            let settled = settle(&mut state, frames.len(), Ok(0), cap, |i| frames[i]);
            return Offered::Done(settled.map_or_else(|keeps_up| keeps_up, |_| true));
        }
        Offered::Write(Pending {
            outlet: self,
            state,
            frames,
            cap,
        })
    }

    /// The fan-out stops writing here and queues instead; answers the high-water mark of what
    /// it wrote.
    pub fn hold(&self) -> MessageId {
        let mut state = self.lock();
        state.direct = false;
        state.high_water
    }

    /// The fan-out stops writing here for good: the connection is kicked or ending.
    pub fn stop(&self) {
        let mut state = self.lock();
        state.direct = false;
        state.stopped = true;
    }

    /// The fan-out may write here again, every message up to `high_water` handed out, if
    /// `queue_is_empty` (asked under the lock, so nothing is queued in between).
    pub fn release(&self, high_water: MessageId, queue_is_empty: impl FnOnce() -> bool) -> Release {
        let mut state = self.lock();
        if state.stopped {
            return Release::Stopped;
        }
        if !queue_is_empty() {
            return Release::Queued;
        }
        state.direct = true;
        state.high_water = state.high_water.max(high_water);
        Release::Direct
    }

    /// Resolves once the backlog holds something to write.
    pub async fn backlog(&self) {
        std::future::poll_fn(|cx| {
            self.backlogged.register(cx.waker());
            if self.lock().backlog.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }

    /// Writes `buf`, whole frames of the task's, after the backlog: as much as the socket takes
    /// now, the rest kept. Never waits.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.write_locked(&mut self.lock(), buf)
    }

    /// Writes what `encode` makes of the cursor, whole, as [`Outlet::write`] does: under the
    /// lock, so no write of the fan-out's comes between, and the cursor is the one the bytes
    /// follow (every message up to it written or handed to the task).
    pub fn write_with(&self, encode: impl FnOnce(MessageId) -> Bytes) -> io::Result<()> {
        let mut state = self.lock();
        let bytes = encode(state.high_water);
        self.write_locked(&mut state, &bytes).map(|_| ())
    }

    fn write_locked(&self, state: &mut State, buf: &[u8]) -> io::Result<usize> {
        if !state.backlog.is_empty() {
            state.backlog.push_back(Bytes::copy_from_slice(buf));
            return Ok(buf.len());
        }
        match self.stream.try_write(buf) {
            Ok(n) if n == buf.len() => {}
            Ok(n) => state.backlog.push_back(Bytes::copy_from_slice(&buf[n..])),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                state.backlog.push_back(Bytes::copy_from_slice(buf))
            }
            Err(err) => return Err(err),
        }
        Ok(buf.len())
    }

    /// Writes the backlog out, waiting for the socket as needed.
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            {
                let mut state = self.lock();
                loop {
                    let Some(front) = state.backlog.front_mut() else {
                        return Poll::Ready(Ok(()));
                    };
                    match self.stream.try_write(front) {
                        Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                        Ok(n) if n == front.len() => {
                            state.backlog.pop_front();
                        }
                        Ok(n) => front.advance(n),
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        Err(err) => return Poll::Ready(Err(err)),
                    }
                }
            }
            ready!(self.stream.poll_write_ready(cx))?;
        }
    }

    /// Ends the socket's sending side (after the backlog is written: see `poll_drain`).
    pub fn shutdown(&self) -> io::Result<()> {
        rustix::net::shutdown(&self.stream, rustix::net::Shutdown::Write).map_err(io::Error::from)
    }

    /// Reads what the socket has.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            // Into the unfilled part as it is: nothing is zeroed first.
            match self.stream.try_read_buf(buf) {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

#[cfg(test)]
impl Outlet {
    /// The backlog's bytes, taken out of it.
    pub fn take_backlog(&self) -> Vec<u8> {
        self.lock()
            .backlog
            .drain(..)
            .flat_map(|b| b.to_vec())
            .collect()
    }
}

/// `item`'s bytes in `form`, if it goes out: a message only when newer than everything written
/// or handed to the task (it then counts as such), and nothing empty.
fn fresh<'a>(state: &mut State, item: &'a Live, form: Form) -> Option<&'a Bytes> {
    if let Some(id) = item.message_id() {
        if id <= state.high_water {
            return None;
        }
        state.high_water = id;
    }
    form.bytes(item).filter(|bytes| !bytes.is_empty())
}

/// As [`fresh`], with the bytes made for this connection where the form makes them
/// ([`Form::made`]).
fn fresh_made(state: &mut State, item: &Live, form: Form) -> Option<Bytes> {
    form.made(item, state.high_water)
        .or_else(|| fresh(state, item, form).cloned())
}

/// What a socket did not take of a write of `count` frames (`frame(i)` is the `i`th) goes to the
/// backlog, after what is there. Answers whether the backlog was empty and is no more, or, when
/// the connection is to be written to no more, whether it keeps up.
fn settle<'a>(
    state: &mut State,
    count: usize,
    written: io::Result<usize>,
    cap: usize,
    frame: impl Fn(usize) -> &'a Bytes,
) -> Result<bool, bool> {
    let was_empty = state.backlog.is_empty();
    let mut written = match written {
        Ok(n) => n,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
        // The task meets the error at its next read or write and ends; nothing more here.
        Err(_) => {
            state.direct = false;
            state.stopped = true;
            return Err(true);
        }
    };
    for i in 0..count {
        let frame = frame(i);
        if written >= frame.len() {
            written -= frame.len();
            continue;
        }
        if state.backlog.len() >= cap {
            state.direct = false;
            state.stopped = true;
            return Err(false);
        }
        state.backlog.push_back(frame.slice(written..));
        written = 0;
    }
    Ok(was_empty && !state.backlog.is_empty())
}

/// What [`Outlet::gather`] came to.
pub enum Offered<'a> {
    /// Queued, kept, or written already: whether the connection keeps up.
    Done(bool),
    /// A write for a [`Batch`] to make.
    Write(Pending<'a>),
}

/// A write gathered for a [`Batch`]: the frames, whole, for a socket with no backlog, whose
/// outlet stays locked until the write is made, so nothing comes between on the socket.
pub struct Pending<'a> {
    outlet: &'a Outlet,
    state: MutexGuard<'a, State>,
    frames: SmallVec<[&'a Bytes; 2]>,
    cap: usize,
}

/// Writes gathered for one [`Batch::write`]: kept on the stack.
pub type Writes<'a> = SmallVec<[Pending<'a>; BATCH]>;

/// The most writes a [`Batch`] makes in one system call.
pub const BATCH: usize = 64;

impl Pending<'_> {
    /// Settles the write with what the socket took; answers whether the connection keeps up.
    fn finish(mut self, written: io::Result<usize>) -> bool {
        // Taken whole (the common case): nothing to keep.
        if let Ok(n) = written
            && n == self.frames.iter().map(|frame| frame.len()).sum::<usize>()
        {
            return true;
        }
        let frames = &self.frames;
        let settled = settle(&mut self.state, frames.len(), written, self.cap, |i| {
            frames[i]
        });
        drop(self.state);
        match settled {
            Ok(backlogged) => {
                if backlogged {
                    self.outlet.backlogged.wake();
                }
                true
            }
            Err(keeps_up) => keeps_up,
        }
    }
}

/// The fan-out's writes to many sockets made with one system call, through io_uring: each a
/// `writev` that never waits (a socket that would block takes less, or nothing, and the rest
/// goes to its backlog, as with a write of its own).
///
/// A system call costs more than its work on some machines (tidings-bench `--only sendpath`: on
/// a 2-core AMD EPYC with the kernel's return-stack mitigation, one write per call cost 10.2 µs
/// a socket, 64 per call 7.5 µs). Where io_uring is not there (an old kernel, a container that
/// forbids it), [`Batch::new`] fails and the fan-out writes each socket itself.
pub struct Batch {
    ring: IoUring,
}

impl Batch {
    /// A batch of up to [`BATCH`] writes.
    pub fn new() -> io::Result<Batch> {
        Ok(Batch {
            ring: IoUring::new(BATCH as u32)?,
        })
    }

    /// Makes the writes, in one system call, and settles each; calls `lagging` with the index
    /// of each whose connection has fallen too far behind (to be kicked).
    pub fn write(&mut self, pending: &mut Writes<'_>, mut lagging: impl FnMut(usize)) {
        let slices: SmallVec<[IoSlice<'_>; BATCH]> = pending
            .iter()
            .flat_map(|p| p.frames.iter().map(|frame| IoSlice::new(frame)))
            .collect();
        let mut results: SmallVec<[Option<i32>; BATCH]> = smallvec::smallvec![None; pending.len()];
        assert!(pending.len() <= BATCH, "more writes than a batch holds");
        let mut queue = self.ring.submission();
        let mut at = 0;
        for (i, p) in pending.iter().enumerate() {
            let count = p.frames.len();
            let entry = opcode::Writev::new(
                types::Fd(p.outlet.stream.as_raw_fd()),
                slices[at..at + count].as_ptr().cast(),
                count as u32,
            )
            .rw_flags(rustix::io::ReadWriteFlags::NOWAIT.bits() as i32)
            .build()
            .user_data(i as u64);
            at += count;
            // SAFETY: the io vectors (`slices`) and the frames they point to live until every
            // write has completed (below, before this function returns); the socket is open as
            // long as its outlet, which `pending` borrows; the queue has room (its size is at
            // least `BATCH`, and it is emptied by every call).
            #[allow(unsafe_code)]
            let pushed = unsafe { queue.push(&entry) };
            pushed.expect("the queue has room for a whole batch");
        }
        drop(queue);
        // Writes that never wait complete within the call that submits them; the loop is for an
        // interrupted call. Returning before every write has completed would leave the kernel
        // reading buffers that are gone, so a ring that will not complete them ends the process.
        let mut waiting = pending.len();
        let mut calls = 0;
        while waiting > 0 {
            let submitted = self.ring.submit_and_wait(waiting);
            for done in self.ring.completion() {
                if let Some(result @ None) = results.get_mut(done.user_data() as usize) {
                    *result = Some(done.result());
                    waiting -= 1;
                }
            }
            calls += 1;
            if waiting > 0 && calls > 1000 {
                tracing::error!(?submitted, waiting, "io_uring does not complete its writes");
                std::process::abort();
            }
        }
        for (i, (p, result)) in pending.drain(..).zip(results).enumerate() {
            let result = result.expect("every write completed");
            let written = if result < 0 {
                Err(io::Error::from_raw_os_error(-result))
            } else {
                Ok(result as usize)
            };
            if !p.finish(written) {
                lagging(i);
            }
        }
    }
}

/// A request's socket as an outlet: put in the request's extensions by the listener for the
/// responses it writes to the socket itself (the feed), so the handler can hand it to the hub.
#[derive(Debug, Clone)]
pub struct Attached(pub Arc<Outlet>);

/// Resolves once `outlet` has a backlog to write; never without an outlet.
pub async fn backlog(outlet: Option<&Outlet>) {
    match outlet {
        Some(outlet) => outlet.backlog().await,
        None => std::future::pending().await,
    }
}

/// An outlet as the IO of its connection's task: reads from the socket, writes through the
/// outlet (whole, after its backlog: see [`Outlet::write`]), flushes by writing the backlog out.
#[derive(Debug)]
pub struct Io {
    outlet: Arc<Outlet>,
    /// What was read past the request before the outlet took the socket.
    unread: Bytes,
}

impl Io {
    pub fn new(outlet: Arc<Outlet>, unread: &[u8]) -> Io {
        Io {
            outlet,
            // Copied: a slice would hold the whole buffer it came from for the connection's life.
            unread: Bytes::copy_from_slice(unread),
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unread.is_empty() {
            return this.outlet.poll_read(cx, buf);
        }
        let n = this.unread.len().min(buf.remaining());
        buf.put_slice(&this.unread.split_to(n));
        if this.unread.is_empty() {
            // An empty slice would still hold the buffer.
            this.unread = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Taken whole (what the socket refuses is kept): the writers above write whole frames
        // or events, and none may be cut by the fan-out's.
        Poll::Ready(self.outlet.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outlet.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.outlet.poll_drain(cx))?;
        Poll::Ready(self.outlet.shutdown())
    }
}
