//! A connection's socket, written from outside its task: a WebSocket's on plain TCP, or a feed's
//! the listener serves itself.
//!
//! The fan-out writes a message's frame (or feed event: `delivery::Form`) to each such socket
//! itself instead of queueing it and waking the connection's task: one non-blocking write of the
//! bytes encoded once for everyone, nothing scheduled. What the socket does not take goes to the outlet's backlog, in order, and
//! the connection's task is woken to write it as the socket drains; a backlog past the
//! connection's queue cap means the connection has fallen too far behind, and it is kicked as
//! lagging, as a full queue would be.
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
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;
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
            let mut fresh = chunk.iter().filter_map(|item| {
                if let Some(id) = item.message_id() {
                    if id <= state.high_water {
                        return None;
                    }
                    state.high_water = id;
                }
                form.bytes(item).filter(|bytes| !bytes.is_empty())
            });
            // One item (the common case: the fan-out keeps up) needs no lists.
            let frames: Vec<&Bytes> = match chunk {
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
        let was_empty = state.backlog.is_empty();
        let mut written = 0;
        if was_empty {
            match self.stream.try_write_vectored(frames) {
                Ok(n) => written = n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // The task meets the error at its next read or write and ends; nothing more
                // here.
                Err(_) => {
                    state.direct = false;
                    state.stopped = true;
                    return Err(true);
                }
            }
        }
        for (i, slice) in frames.iter().enumerate() {
            if written >= slice.len() {
                written -= slice.len();
                continue;
            }
            if state.backlog.len() >= cap {
                state.direct = false;
                state.stopped = true;
                return Err(false);
            }
            state.backlog.push_back(frame(i).slice(written..));
            written = 0;
        }
        Ok(was_empty && !state.backlog.is_empty())
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
        let mut state = self.lock();
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
            match self.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
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

    pub fn outlet(&self) -> &Arc<Outlet> {
        &self.outlet
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
