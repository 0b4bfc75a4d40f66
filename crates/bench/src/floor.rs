//! The floor: the least a broadcast server can do for each delivery on this machine, measured
//! like the peers, so the figures say how close Tidings comes to it.
//!
//! Every connection is a WebSocket (tungstenite's handshake and reader). A text frame from any of
//! them is framed once and written to every connection by one writer thread per core, each
//! holding a share of the sockets, in io_uring submissions of 64 sends (the cheapest way the send
//! path found, `--only sendpath`). Frames that come while a writer is busy go out together at its
//! next pass, one write per socket. Nothing else: no store, no login, no queue per connection (a
//! socket that does not take a whole write is shut), no rest between passes. Its idle memory is
//! not a floor: each connection keeps a reader task with tungstenite's buffers. Served by this
//! binary's `floor-server` subcommand.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use io_uring::IoUring;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::sendpath;

/// Sends per io_uring submission.
const BATCH: usize = 64;

/// What a writer thread is told.
enum Command {
    /// A connection to write to from now on (its reader owns the socket).
    Add(RawFd),
    /// A connection to forget, before its reader closes the socket: answered once forgotten,
    /// so the writer never writes to the descriptor after it is closed (and perhaps reused).
    Remove(RawFd, oneshot::Sender<()>),
    /// A frame for every connection.
    Send(Arc<[u8]>),
}

/// Serves the floor until SIGINT or SIGTERM.
pub async fn floor_server(listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let serving = serve(listener)?;
    // The line the benchmark waits for.
    println!("floor broadcast server listening on http://{addr}/ws");
    tokio::select! {
        () = serving => {}
        () = crate::peer::terminated() => {}
    }
    Ok(())
}

/// Starts the writer threads; the future accepts connections on `listener` for ever.
fn serve(listener: TcpListener) -> Result<impl Future<Output = ()>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut writers = Vec::with_capacity(cores);
    for index in 0..cores {
        let ring = IoUring::new(BATCH as u32).context("the floor needs io_uring")?;
        let (writer, commands) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("floor-writer-{index}"))
            .spawn(move || write_all(ring, commands))?;
        writers.push(writer);
    }
    let writers: Arc<[mpsc::Sender<Command>]> = writers.into();
    Ok(async move {
        for next in 0usize.. {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of descriptors, say: the connections already open go on.
                    tracing::warn!("the floor could not accept: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let writers = Arc::clone(&writers);
            tokio::spawn(async move {
                if let Err(err) = connection(stream, next % writers.len(), &writers).await {
                    tracing::debug!("floor connection: {err:#}");
                }
            });
        }
    })
}

/// One connection: handed to writer `mine`, then read until it ends; each text frame it sends
/// goes to every writer.
async fn connection(
    stream: TcpStream,
    mine: usize,
    writers: &[mpsc::Sender<Command>],
) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut socket = tokio_tungstenite::accept_async(stream).await?;
    let fd = socket.get_ref().as_raw_fd();
    let writer = &writers[mine];
    writer
        .send(Command::Add(fd))
        .context("the writer has stopped")?;
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message {
            let mut frame = Vec::with_capacity(text.len() + 4);
            Frame::message(text, OpCode::Data(Data::Text), true).format(&mut frame)?;
            let frame: Arc<[u8]> = frame.into();
            for writer in writers {
                let _ = writer.send(Command::Send(Arc::clone(&frame)));
            }
        }
    }
    let (forgotten, answer) = oneshot::channel();
    if writer.send(Command::Remove(fd, forgotten)).is_ok() {
        let _ = answer.await;
    }
    Ok(())
}

/// A writer thread: at each pass, every frame that has come since the last, to each of its
/// sockets in one send. A socket that does not take it whole is shut (its reader then ends and
/// has it forgotten).
fn write_all(mut ring: IoUring, commands: mpsc::Receiver<Command>) {
    let mut fds: Vec<RawFd> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    while let Ok(command) = commands.recv() {
        let mut take = |command| match command {
            Command::Add(fd) => fds.push(fd),
            Command::Remove(fd, forgotten) => {
                fds.retain(|&held| held != fd);
                let _ = forgotten.send(());
            }
            Command::Send(frame) => pending.extend_from_slice(&frame),
        };
        take(command);
        while let Ok(command) = commands.try_recv() {
            take(command);
        }
        if pending.is_empty() {
            continue;
        }
        let mut short = Vec::new();
        // SAFETY: `pending` is neither changed nor freed after an error (it is leaked and the
        // thread ends).
        #[allow(unsafe_code)]
        let sent = unsafe { sendpath::submit(&mut ring, BATCH, &fds, &pending, |i| short.push(i)) };
        if let Err(err) = sent {
            tracing::error!("the floor's writer stopped: {err:#}");
            std::mem::forget(pending);
            return;
        }
        pending.clear();
        for index in short {
            // SAFETY: the descriptor is open: its reader closes the socket only after this
            // thread has forgotten it (`Command::Remove`).
            #[allow(unsafe_code)]
            let socket = unsafe { BorrowedFd::borrow_raw(fds[index]) };
            let _ = rustix::net::shutdown(socket, rustix::net::Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::SinkExt;
    use tokio::time::timeout;

    use super::*;
    use crate::target::{Socket, connect};

    const WAIT: Duration = Duration::from_secs(10);

    async fn next_text(socket: &mut Socket) -> String {
        match timeout(WAIT, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_connection_gets_each_frame_in_order_and_the_rest_go_on_when_one_leaves() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener).unwrap());
        // Each connects and sends, and gets its own frame back: it is written to from then on.
        // (A frame sent just before it joined may come first: the floor keeps no cursor.)
        let mut sockets = Vec::new();
        for k in 0..5 {
            let mut socket = connect(addr, "/ws", None, true).await.unwrap();
            let own = format!("joined {k}");
            socket.send(Message::text(own.clone())).await.unwrap();
            loop {
                let text = next_text(&mut socket).await;
                if text == own {
                    break;
                }
                let earlier = (0..k).any(|j| text == format!("joined {j}"));
                assert!(earlier, "{text:?} before {own:?}");
            }
            sockets.push(socket);
        }
        // ... and every frame sent after it, framed as sent and in order.
        for (i, socket) in sockets.iter_mut().enumerate() {
            for k in i + 1..5 {
                assert_eq!(next_text(socket).await, format!("joined {k}"));
            }
        }
        // One leaves; the writers forget it and the others go on getting frames.
        let mut gone = sockets.remove(0);
        gone.close(None).await.unwrap();
        for (from, text) in [(3, "second"), (0, "third")] {
            sockets[from].send(Message::text(text)).await.unwrap();
            for socket in &mut sockets {
                assert_eq!(next_text(socket).await, text);
            }
        }
    }
}
