//! A long-polling subscriber over one kept-alive HTTP/1.1 connection: `GET /api/poll` with the
//! cursor of the last answer, again and again, as a browser's or the client core's long-poll
//! does. Written on a raw socket, like the SSE client beside it, so thousands of held polls cost
//! the load generator a socket and a small buffer each.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::sse::parse_head;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;
/// Largest answer accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long the server holds a poll (seconds): longer than any step waits.
const HOLD_SECS: u64 = 25;

/// One long-polling subscriber.
pub struct Poller {
    stream: TcpStream,
    addr: SocketAddr,
    token: String,
    cursor: i64,
    buf: Vec<u8>,
    /// Bytes written and read, heads included: what long-polling costs on the wire.
    pub wire_bytes: u64,
}

impl Poller {
    /// Connects and takes the cursor from a first, immediate poll from `cursor` (the newest
    /// message, as a client in step has it; or past it, `i64::MAX`, where the server resets it
    /// to the newest); the next [`Poller::poll`] is then held.
    pub async fn open(addr: SocketAddr, token: &str, cursor: i64) -> Result<Poller> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut poller = Poller {
            stream,
            addr,
            token: token.to_owned(),
            cursor,
            buf: Vec::with_capacity(READ_CHUNK),
            wire_bytes: 0,
        };
        poller.request(0).await?;
        poller.answer().await?;
        Ok(poller)
    }

    /// Sends the next poll, held by the server until something arrives.
    pub async fn send(&mut self) -> Result<()> {
        self.request(HOLD_SECS).await
    }

    /// Reads the answer to the poll in flight: the batch as it came, its cursor kept for the
    /// next poll.
    pub async fn answer(&mut self) -> Result<&[u8]> {
        let (head, len) = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            self.fill().await?;
        };
        if head.status != 200 {
            bail!("poll answered {}", head.status);
        }
        let body_len = head
            .content_length
            .context("a poll's answer has a length")?;
        if body_len > MAX_BODY {
            bail!("a poll's answer of {body_len} bytes");
        }
        while self.buf.len() < len + body_len {
            self.fill().await?;
        }
        self.buf.drain(..len);
        let body = &self.buf[..body_len];
        self.cursor = cursor_of(body).context("a batch without a cursor")?;
        // The answer is handed out, then dropped before the next read.
        let (body, rest) = self.buf.split_at(body_len);
        debug_assert!(
            rest.is_empty(),
            "nothing follows an answer until the next poll"
        );
        Ok(body)
    }

    /// The cursor of the last answer: where a new poller resumes.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Drops the answer just read.
    pub fn consume(&mut self) {
        self.buf.clear();
    }

    async fn request(&mut self, hold_secs: u64) -> Result<()> {
        let request = format!(
            "GET /api/poll?cursor={}&timeout={hold_secs} HTTP/1.1\r\nHost: {}\r\n\
             Authorization: Bearer {}\r\n\r\n",
            self.cursor, self.addr, self.token
        );
        self.wire_bytes += request.len() as u64;
        self.stream.write_all(request.as_bytes()).await?;
        Ok(())
    }

    async fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.wire_bytes += n as u64;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// The `cursor` a batch starts with: `{"cursor":N,…`.
fn cursor_of(body: &[u8]) -> Option<i64> {
    let rest = body.strip_prefix(b"{\"cursor\":")?;
    let len = rest
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'-')
        .count();
    std::str::from_utf8(&rest[..len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_read_from_the_start_of_a_batch() {
        assert_eq!(cursor_of(br#"{"cursor":42,"frames":[]}"#), Some(42));
        assert_eq!(cursor_of(br#"{"frames":[]}"#), None);
    }
}
