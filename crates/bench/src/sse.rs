//! A minimal Server-Sent Events client over a raw HTTP/1.1 connection: the response head, the
//! chunked transfer coding and the event stream format, each a small incremental parser.
//!
//! Written by hand rather than taken from an SSE crate so that ten thousand idle feeds cost the
//! load generator one socket and a few small buffers each, and so a `message` event can be looked
//! at without allocating.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;
/// Longest line of the event stream accepted; a longer one is a broken stream.
const MAX_LINE: usize = 1024 * 1024;

/// The parts of a response head the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub chunked: bool,
    pub content_type: Option<String>,
    pub content_length: Option<usize>,
}

/// Parses a response head at the start of `bytes`. Returns the head and its length including the
/// blank line, or None while the blank line has not arrived.
pub fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        if bytes.len() > MAX_HEAD {
            bail!("response head longer than {MAX_HEAD} bytes");
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&bytes[..end]).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1 response: {status_line:?}");
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("no status in {status_line:?}"))?;
    let mut head = Head {
        status,
        chunked: false,
        content_type: None,
        content_length: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value
                .split(',')
                .any(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().ok();
        }
    }
    Ok(Some((head, end + 4)))
}

/// Decodes the chunked transfer coding incrementally.
#[derive(Debug, Clone, Default)]
pub struct Chunked {
    state: ChunkState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size; `ext` once past a `;` extension.
    Size {
        size: u64,
        digits: u32,
        ext: bool,
    },
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// The last chunk arrived; trailers and anything after are ignored.
    Done,
}

impl Default for ChunkState {
    fn default() -> Self {
        ChunkState::Size {
            size: 0,
            digits: 0,
            ext: false,
        }
    }
}

impl Chunked {
    /// Appends the payload carried by `input` to `out`.
    pub fn decode(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        while let Some(&byte) = input.first() {
            match self.state {
                ChunkState::Size { size, digits, ext } => {
                    input = &input[1..];
                    self.state = match byte {
                        b'\r' if digits > 0 => ChunkState::SizeLf { size },
                        _ if ext => ChunkState::Size { size, digits, ext },
                        b';' if digits > 0 => ChunkState::Size {
                            size,
                            digits,
                            ext: true,
                        },
                        _ => {
                            let digit = (byte as char)
                                .to_digit(16)
                                .with_context(|| format!("bad chunk size byte {byte:#x}"))?;
                            if digits >= 15 {
                                bail!("chunk size too large");
                            }
                            ChunkState::Size {
                                size: size * 16 + u64::from(digit),
                                digits: digits + 1,
                                ext,
                            }
                        }
                    };
                }
                ChunkState::SizeLf { size } => {
                    input = &input[1..];
                    if byte != b'\n' {
                        bail!("chunk size line not ended by CRLF");
                    }
                    self.state = if size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data { left: size }
                    };
                }
                ChunkState::Data { left } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data { left }
                    };
                }
                ChunkState::DataCr | ChunkState::DataLf => {
                    input = &input[1..];
                    let expected = if self.state == ChunkState::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if byte != expected {
                        bail!("chunk data not followed by CRLF");
                    }
                    self.state = if self.state == ChunkState::DataCr {
                        ChunkState::DataLf
                    } else {
                        ChunkState::default()
                    };
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }

    /// Whether the last chunk has arrived.
    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// One dispatched event, borrowed from the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field; `message` when absent, as the standard says.
    pub name: &'a str,
    /// The `id:` field of this event, when it had one.
    pub id: Option<&'a str>,
    /// The `data:` lines joined by newlines.
    pub data: &'a str,
}

/// The event stream format (WHATWG HTML, "Server-sent events"), fed bytes as they arrive.
///
/// It looks for line ends with `memchr` and takes a line that arrived whole straight from the
/// input, so a feed costs the load generator little beside the server it measures; only a line
/// cut between reads is copied.
#[derive(Debug, Default)]
pub struct Parser {
    /// The start of a line whose end has not arrived yet.
    line: Vec<u8>,
    /// The previous byte was a CR, so a following LF ends nothing new.
    after_cr: bool,
    name: String,
    id: String,
    has_id: bool,
    data: Vec<u8>,
    has_data: bool,
}

impl Parser {
    /// Parses `bytes`, calling `on_event` for every event they complete.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_event: impl FnMut(Event<'_>)) -> Result<()> {
        // A CR that ended the last read and an LF that starts this one end one line.
        if !bytes.is_empty() && std::mem::take(&mut self.after_cr) && bytes[0] == b'\n' {
            bytes = &bytes[1..];
        }
        while let Some(end) = memchr::memchr2(b'\r', b'\n', bytes) {
            let ending = bytes[end];
            if self.line.is_empty() {
                check_line(end)?;
                self.end_line(&bytes[..end], &mut on_event);
            } else {
                let mut line = std::mem::take(&mut self.line);
                check_line(line.len() + end)?;
                line.extend_from_slice(&bytes[..end]);
                self.end_line(&line, &mut on_event);
                line.clear();
                self.line = line;
            }
            bytes = &bytes[end + 1..];
            if ending == b'\r' {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        check_line(self.line.len() + bytes.len())?;
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, line: &[u8], on_event: &mut impl FnMut(Event<'_>)) {
        if line.is_empty() {
            if self.has_data {
                on_event(Event {
                    name: if self.name.is_empty() {
                        "message"
                    } else {
                        &self.name
                    },
                    id: self.has_id.then_some(self.id.as_str()),
                    data: &String::from_utf8_lossy(&self.data),
                });
            }
            self.name.clear();
            self.has_id = false;
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => {
                self.name.clear();
                self.name.push_str(&String::from_utf8_lossy(value));
            }
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => {
                self.id.clear();
                self.id.push_str(&String::from_utf8_lossy(value));
                self.has_id = true;
            }
            // `retry` and unknown fields change nothing a benchmark looks at.
            _ => {}
        }
    }
}

/// Fails for a line longer than [`MAX_LINE`]: a broken stream.
fn check_line(len: usize) -> Result<()> {
    if len > MAX_LINE {
        bail!("event stream line longer than {MAX_LINE} bytes");
    }
    Ok(())
}

/// An open feed: the socket and the decoders its bytes go through.
#[derive(Debug)]
pub struct Feed {
    stream: TcpStream,
    chunked: Option<Chunked>,
    parser: Parser,
    /// Body bytes that arrived with the head, handed to the parser on the first read.
    pending: Vec<u8>,
    read: Vec<u8>,
    decoded: Vec<u8>,
    /// Bytes read from the socket after the response head: what the stream costs on the wire.
    pub received: u64,
}

impl Feed {
    /// Opens `GET path` with a bearer token, optionally resuming after `last_event_id`, and reads
    /// the response head; fails unless it is a 200 event stream.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        token: &str,
        last_event_id: Option<i64>,
    ) -> Result<Feed> {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
             Authorization: Bearer {token}\r\n"
        );
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(READ_CHUNK);
        let (head, len) = loop {
            if let Some(parsed) = parse_head(&buf)? {
                break parsed;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed before the response head");
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        if head.status != 200 {
            bail!("feed answered {}", head.status);
        }
        if !head
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("text/event-stream"))
        {
            bail!("feed is not an event stream: {:?}", head.content_type);
        }
        buf.drain(..len);
        Ok(Feed {
            stream,
            chunked: head.chunked.then(Chunked::default),
            parser: Parser::default(),
            pending: buf,
            read: vec![0; READ_CHUNK],
            decoded: Vec::new(),
            received: 0,
        })
    }

    /// Waits for more of the stream and passes every completed event to `on_event`. Returns
    /// false once the stream has ended.
    pub async fn next_events(&mut self, on_event: impl FnMut(Event<'_>)) -> Result<bool> {
        let n = if self.pending.is_empty() {
            self.stream.read(&mut self.read).await?
        } else {
            let n = self.pending.len();
            self.read.resize(n.max(READ_CHUNK), 0);
            self.read[..n].copy_from_slice(&self.pending);
            self.pending = Vec::new();
            n
        };
        if n == 0 {
            return Ok(false);
        }
        self.received += n as u64;
        let input = &self.read[..n];
        match &mut self.chunked {
            Some(chunked) => {
                self.decoded.clear();
                chunked.decode(input, &mut self.decoded)?;
                self.parser.feed(&self.decoded, on_event)?;
                Ok(!chunked.done())
            }
            None => {
                self.parser.feed(input, on_event)?;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of(parts: &[&[u8]]) -> Vec<(String, Option<String>, String)> {
        let mut parser = Parser::default();
        let mut events = Vec::new();
        for part in parts {
            parser
                .feed(part, |e| {
                    events.push((
                        e.name.to_owned(),
                        e.id.map(str::to_owned),
                        e.data.to_owned(),
                    ))
                })
                .unwrap();
        }
        events
    }

    #[test]
    fn events_with_names_ids_and_comments() {
        let events = events_of(&[
            b"retry: 3000\n\n: keepalive\n\nid: 5\nevent: message\ndata: {\"a\":1}\n\nevent: session\ndata: x\n\n",
        ]);
        assert_eq!(
            events,
            vec![
                (
                    "message".to_owned(),
                    Some("5".to_owned()),
                    "{\"a\":1}".to_owned()
                ),
                ("session".to_owned(), None, "x".to_owned()),
            ]
        );
    }

    #[test]
    fn split_anywhere_and_any_line_ending() {
        let text = b"id: 7\r\nevent: message\rdata: one\ndata:two\r\n\r\ndata: three\n\n";
        let whole = events_of(&[text]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].2, "one\ntwo");
        assert_eq!(whole[0].1.as_deref(), Some("7"));
        assert_eq!(whole[1], ("message".to_owned(), None, "three".to_owned()));
        for cut in 1..text.len() {
            assert_eq!(
                events_of(&[&text[..cut], &text[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_split_into_three_reads_gives_the_same_events() {
        let text = b"id: 1\revent: message\r\rdata: a\r\ndata: b\r\n\r\n: c\r\rdata: \xffb\n\n";
        let whole = events_of(&[text]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].2, "a\nb");
        assert_eq!(
            whole[1].2, "\u{fffd}b",
            "invalid UTF-8 is replaced, not dropped"
        );
        for first in 0..text.len() {
            for second in first..text.len() {
                let parts = [&text[..first], &text[first..second], &text[second..]];
                assert_eq!(events_of(&parts), whole, "cut at {first} and {second}");
            }
        }
    }

    #[test]
    fn a_line_over_the_limit_is_refused_whole_or_in_pieces() {
        let long = vec![b'x'; MAX_LINE + 1];
        assert!(Parser::default().feed(&long, |_| {}).is_err());
        let mut ended = long.clone();
        ended.push(b'\n');
        assert!(Parser::default().feed(&ended, |_| {}).is_err());
        let mut parser = Parser::default();
        parser.feed(&long[..MAX_LINE], |_| {}).unwrap();
        assert!(parser.feed(b"x\n", |_| {}).is_err());
        let mut parser = Parser::default();
        parser.feed(&long[..MAX_LINE], |_| {}).unwrap();
        parser.feed(b"\n", |_| {}).unwrap();
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        assert!(events_of(&[b"event: lock\n\nid: 3\n\n"]).is_empty());
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for cut in 0..=body.len() {
            let mut chunked = Chunked::default();
            let mut out = Vec::new();
            chunked.decode(&body[..cut], &mut out).unwrap();
            chunked.decode(&body[cut..], &mut out).unwrap();
            assert_eq!(out, b"hello, world", "cut at {cut}");
            assert!(chunked.done());
        }
    }

    #[test]
    fn chunked_rejects_garbage() {
        for bad in [&b"zz\r\n"[..], b"3\r\nabcX", b"3\rX", b"\r\n"] {
            let mut out = Vec::new();
            assert!(
                Chunked::default().decode(bad, &mut out).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn heads_parse_once_complete() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\nbody";
        assert_eq!(parse_head(&head[..20]).unwrap(), None);
        let (parsed, len) = parse_head(head).unwrap().unwrap();
        assert_eq!(parsed.status, 200);
        assert!(parsed.chunked);
        assert_eq!(
            parsed.content_type.as_deref(),
            Some("text/event-stream; charset=utf-8")
        );
        assert_eq!(&head[len..], b"body");
        let (unauthorized, _) = parse_head(b"HTTP/1.1 401 Unauthorized\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(unauthorized.status, 401);
        assert!(!unauthorized.chunked);
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
    }
}
