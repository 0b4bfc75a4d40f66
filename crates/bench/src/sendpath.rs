//! `--only sendpath`: what the fan-out's socket writes cost, issued two ways. The server's
//! fan-out writes one message to each subscriber's socket with a `writev` of its own; io_uring
//! could carry a whole slice of those writes in one system call. This measures both on the same
//! loopback sockets, without the server: each round writes one frame to every socket, timed,
//! then reads every socket's other end empty, untimed; the ways alternate from round to round.
//!
//! The receiving ends are not waiting in `epoll` as a real client's are, so the kernel's
//! wake-up of a reader is left out of both ways alike: the figures are the send side's own cost,
//! which is where batching the system calls could save anything. (`sendmmsg` batches datagrams
//! on one socket, not writes to many TCP sockets, so it has no place here.)

use std::io::{IoSlice, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use io_uring::{IoUring, opcode, types};
use rustix::net::SendFlags;
use rustix::time::{ClockId, clock_gettime};
use serde::Serialize;

use crate::latency::median;

/// How the run is shaped.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Connected socket pairs written to.
    pub sockets: usize,
    /// Bytes of each write: a chat message's frame.
    pub frame_bytes: usize,
    /// Rounds of one write to every socket, per way.
    pub rounds: usize,
    /// Writes per io_uring submission, one way each.
    pub batches: Vec<usize>,
}

/// One way of issuing the writes, and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct Way {
    pub name: String,
    /// Writes per system call.
    pub per_call: usize,
    /// Medians over the rounds, per write.
    pub wall_ns: f64,
    pub cpu_ns: f64,
    /// Writes the socket did not take whole at once, over all rounds (expected none).
    pub not_taken: u64,
}

/// What the run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub sockets: usize,
    pub frame_bytes: usize,
    pub rounds: usize,
    pub ways: Vec<Way>,
}

/// Runs the measurement (blocking: it owns the thread it runs on).
pub fn run(plan: &Plan) -> Result<Outcome> {
    if plan.sockets == 0 || plan.frame_bytes == 0 || plan.rounds == 0 {
        bail!("the send path needs sockets, bytes and rounds");
    }
    let (limit, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if 2 * plan.sockets as u64 + 64 > limit {
        bail!(
            "{} socket pairs need {} open files; the limit is {limit}",
            plan.sockets,
            2 * plan.sockets
        );
    }
    let pairs = connect(plan.sockets)?;
    let fds: Vec<RawFd> = pairs.iter().map(|(server, _)| server.as_raw_fd()).collect();
    // 'static: after an error, a send may still be in flight (`submit`'s safety contract).
    let frame: &'static [u8] = Box::leak(vec![b'x'; plan.frame_bytes].into_boxed_slice());
    let mut rings = Vec::new();
    for &batch in &plan.batches {
        let batch = batch.clamp(1, plan.sockets);
        let entries = u32::try_from(batch.next_power_of_two()).context("batch too large")?;
        let ring = IoUring::new(entries).context("setting up io_uring")?;
        rings.push((batch, ring));
    }
    let ways = 1 + rings.len();
    let mut wall = vec![Vec::new(); ways];
    let mut cpu = vec![Vec::new(); ways];
    let mut not_taken = vec![0u64; ways];
    let mut sink = vec![0u8; 64 * 1024];
    for round in 0..plan.rounds {
        for k in 0..ways {
            let way = (round + k) % ways;
            let wall_start = Instant::now();
            let cpu_start = cpu_now();
            not_taken[way] += match way {
                0 => writev_each(&pairs, frame),
                _ => {
                    let (batch, ring) = &mut rings[way - 1];
                    let mut short = 0;
                    // SAFETY: the frame is 'static, so it outlives any send left in flight.
                    #[allow(unsafe_code)]
                    let submitted = unsafe { submit(ring, *batch, &fds, frame, |_| short += 1) };
                    submitted?;
                    short
                }
            };
            let cpu_ns = cpu_now() - cpu_start;
            let wall_ns = wall_start.elapsed().as_nanos() as f64;
            wall[way].push(wall_ns / plan.sockets as f64);
            cpu[way].push(cpu_ns / plan.sockets as f64);
            drain(&pairs, &mut sink, plan.frame_bytes)?;
        }
    }
    let mut out = Vec::new();
    for way in 0..ways {
        let (name, per_call) = match way {
            0 => (
                "writev, one per socket (the server without io_uring)".to_owned(),
                1,
            ),
            _ => {
                let batch = rings[way - 1].0;
                (format!("io_uring send, {batch} per submission"), batch)
            }
        };
        out.push(Way {
            name,
            per_call,
            wall_ns: median(&wall[way]).unwrap_or(0.0),
            cpu_ns: median(&cpu[way]).unwrap_or(0.0),
            not_taken: not_taken[way],
        });
    }
    Ok(Outcome {
        sockets: plan.sockets,
        frame_bytes: plan.frame_bytes,
        rounds: plan.rounds,
        ways: out,
    })
}

/// `count` connected loopback pairs: (the server's end, written to; the client's, read).
fn connect(count: usize) -> Result<Vec<(TcpStream, TcpStream)>> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let client = TcpStream::connect(addr).context("connecting a socket pair")?;
        let (server, _) = listener.accept()?;
        // As the server's connections are.
        server.set_nodelay(true)?;
        server.set_nonblocking(true)?;
        client.set_nonblocking(true)?;
        pairs.push((server, client));
    }
    Ok(pairs)
}

/// The process's CPU time, in nanoseconds: io_uring's own workers, if any, count too.
fn cpu_now() -> f64 {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    t.tv_sec as f64 * 1e9 + t.tv_nsec as f64
}

/// One non-blocking `writev` per socket; answers how many did not take the whole frame.
fn writev_each(pairs: &[(TcpStream, TcpStream)], frame: &[u8]) -> u64 {
    let mut not_taken = 0;
    for (server, _) in pairs {
        let mut socket = server;
        match socket.write_vectored(&[IoSlice::new(frame)]) {
            Ok(n) if n == frame.len() => {}
            _ => not_taken += 1,
        }
    }
    not_taken
}

/// Writes `frame` to each socket in `fds` as io_uring sends that never wait (`MSG_DONTWAIT`),
/// `batch` per submission, each submission's completions reaped before the next; `short(i)` for
/// each socket `fds[i]` that did not take the whole frame. Also the floor peer's writes.
///
/// # Safety
///
/// `frame` must stay valid and unchanged while a send is in flight. Every send is complete when
/// this returns `Ok`; after an `Err`, some may not be, so the caller must then never free or
/// change `frame`. (io_uring holds its own reference to each socket's file, so the sockets may
/// close meanwhile.)
#[allow(unsafe_code)]
pub unsafe fn submit(
    ring: &mut IoUring,
    batch: usize,
    fds: &[RawFd],
    frame: &[u8],
    mut short: impl FnMut(usize),
) -> Result<()> {
    let flags = (SendFlags::DONTWAIT | SendFlags::NOSIGNAL).bits() as i32;
    let len = u32::try_from(frame.len())?;
    for (start, slice) in (0..).step_by(batch.max(1)).zip(fds.chunks(batch.max(1))) {
        for (i, &fd) in slice.iter().enumerate() {
            let send = opcode::Send::new(types::Fd(fd), frame.as_ptr(), len)
                .flags(flags)
                .build()
                .user_data((start + i) as u64);
            // SAFETY: the caller keeps the buffer valid while a send is in flight, and the queue
            // has room for a whole slice (sized to the batch, and emptied by the submission
            // below).
            unsafe { ring.submission().push(&send) }.context("io_uring queue full")?;
        }
        ring.submit_and_wait(slice.len())
            .context("submitting to io_uring")?;
        let mut reaped = 0;
        for done in ring.completion() {
            reaped += 1;
            if usize::try_from(done.result()).ok() != Some(frame.len()) {
                short(done.user_data() as usize);
            }
        }
        if reaped != slice.len() {
            bail!("io_uring completed {reaped} of {} sends", slice.len());
        }
    }
    Ok(())
}

/// Reads every client end empty: what a round wrote, so the next starts from the same state.
fn drain(pairs: &[(TcpStream, TcpStream)], sink: &mut [u8], expected: usize) -> Result<()> {
    for (_, client) in pairs {
        let mut socket = client;
        let mut read = 0;
        // Loopback has put the bytes in the receive queue before the write returned; bounded
        // by the bytes a round writes.
        while read < expected {
            match socket.read(sink) {
                Ok(0) => bail!("a socket pair closed"),
                Ok(n) => read += n,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_writes_every_frame_whole() {
        let plan = Plan {
            sockets: 10,
            frame_bytes: 140,
            rounds: 3,
            batches: vec![4, usize::MAX],
        };
        let outcome = run(&plan).unwrap();
        let per_call: Vec<usize> = outcome.ways.iter().map(|w| w.per_call).collect();
        // The last batch is every socket at once.
        assert_eq!(per_call, [1, 4, 10]);
        for way in &outcome.ways {
            assert_eq!(way.not_taken, 0, "{}", way.name);
            assert!(way.wall_ns > 0.0 && way.cpu_ns >= 0.0, "{way:?}");
        }
    }
}
