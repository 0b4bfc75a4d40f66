//! How the chat's HTTP transports frame a batch: the chat frames they carry, joined (they are
//! JSON already) into `{"cursor":…,"frames":[…]}`, as a long-poll's answer, and each way a
//! stream carries one (`crate::comet`). The fan-out writes a message's stream chunk itself
//! (`delivery::Form::Stream`), encoded here once for every stream of its format.

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};
use tidings_proto::v1::{EVENT_BATCH, IFRAME_CALLBACK, MessageId};
use tungstenite::Utf8Bytes;

/// Bytes of padding an iframe stream starts with: browsers and buffering proxies hold back the
/// first kilobyte or two of a document before they render (and run) any of it.
const IFRAME_PADDING: usize = 2048;

/// `{"cursor":…,"frames":[…]}`.
pub fn json(cursor: MessageId, frames: &[Utf8Bytes]) -> BytesMut {
    let len: usize = frames.iter().map(|f| f.len() + 1).sum();
    let mut out = BytesMut::with_capacity(len + 40);
    // Writing to memory cannot fail.
    let _ = write!(out, "{{\"cursor\":{cursor},\"frames\":[");
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",");
        }
        out.extend_from_slice(frame.as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

/// How a stream frames its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON batch per line (`application/x-ndjson`).
    Lines,
    /// One `batch` event per batch, the cursor as its id.
    Sse,
    /// One `<script>` per batch, after a padding prelude.
    Iframe,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Lines => "application/x-ndjson",
            Format::Sse => "text/event-stream; charset=utf-8",
            Format::Iframe => "text/html; charset=utf-8",
        }
    }

    /// What the stream starts with, before its first batch.
    pub fn prelude(self) -> Bytes {
        match self {
            Format::Lines | Format::Sse => Bytes::new(),
            Format::Iframe => {
                let mut out = String::with_capacity(IFRAME_PADDING + 200);
                out.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\">");
                out.push_str("<title>tidings</title></head><body>\n<!--");
                out.push_str(&" ".repeat(IFRAME_PADDING));
                out.push_str("-->\n");
                Bytes::from(out)
            }
        }
    }

    /// One batch of `frames`, with `cursor`, as a chunk of the stream.
    pub fn encode(self, cursor: MessageId, frames: &[Utf8Bytes]) -> Bytes {
        let json = json(cursor, frames);
        match self {
            Format::Lines => {
                let mut json = json;
                json.extend_from_slice(b"\n");
                json.freeze()
            }
            Format::Sse => {
                let mut event = BytesMut::with_capacity(json.len() + 40);
                let _ = write!(event, "id: {cursor}\nevent: {EVENT_BATCH}\ndata: ");
                event.extend_from_slice(&json);
                event.extend_from_slice(b"\n\n");
                event.freeze()
            }
            Format::Iframe => script_chunk(&json),
        }
    }
}

/// `<script>parent.tidings(JSON)</script>`, the JSON escaped so that nothing in it can end the
/// script or change how it parses: `<`, `>` and `&` (so no `</script>` or `<!--`), and U+2028
/// and U+2029 (line terminators to older JavaScript engines). Outside strings JSON has none of
/// these, so every one is in a string and its `\uXXXX` escape means the same text.
fn script_chunk(json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(json.len() + 64);
    out.extend_from_slice(b"<script>");
    out.extend_from_slice(IFRAME_CALLBACK.as_bytes());
    out.extend_from_slice(b"(");
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if json.get(i + 1) == Some(&0x80) && json.get(i + 2) == Some(&0xA8) => {
                out.extend_from_slice(b"\\u2028");
                i += 2;
            }
            0xE2 if json.get(i + 1) == Some(&0x80) && json.get(i + 2) == Some(&0xA9) => {
                out.extend_from_slice(b"\\u2029");
                i += 2;
            }
            byte => out.extend_from_slice(&[byte]),
        }
        i += 1;
    }
    out.extend_from_slice(b")</script>\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use tidings_proto::v1::{Batch, ServerFrame};

    use super::*;
    use crate::delivery;

    fn synced(has_more: bool) -> Utf8Bytes {
        delivery::encode(&ServerFrame::Synced {
            latest_id: 42,
            has_more,
        })
    }

    #[test]
    fn a_batch_joins_encoded_frames_into_one_json_object() {
        let batch: Batch =
            serde_json::from_slice(&json(42, &[synced(false), synced(true)])).unwrap();
        assert_eq!(batch.cursor, 42);
        assert_eq!(batch.frames.len(), 2);
        let empty: Batch = serde_json::from_slice(&json(-1, &[])).unwrap();
        assert_eq!(empty.cursor, -1);
        assert!(empty.frames.is_empty());
    }

    #[test]
    fn each_format_frames_the_same_batch() {
        let frames = [synced(false)];
        let body = json(7, &frames);
        let lines = Format::Lines.encode(7, &frames);
        assert_eq!(&lines[..], [&body[..], b"\n"].concat());
        let sse = Format::Sse.encode(7, &frames);
        assert_eq!(
            &sse[..],
            [b"id: 7\nevent: batch\ndata: ".as_slice(), &body, b"\n\n"].concat()
        );
        let script = Format::Iframe.encode(7, &frames);
        assert!(script.starts_with(b"<script>parent.tidings({\"cursor\":7,"));
    }

    #[test]
    fn a_script_chunk_escapes_everything_that_could_end_or_break_the_script() {
        let json = serde_json::to_vec(&serde_json::json!({
            "body": "</script><script>alert(1)</script> <!-- & \u{2028}\u{2029} é"
        }))
        .unwrap();
        let chunk = script_chunk(&json);
        let text = std::str::from_utf8(&chunk).unwrap();
        let inner = text
            .strip_prefix("<script>parent.tidings(")
            .and_then(|t| t.strip_suffix(")</script>\n"))
            .unwrap();
        for bad in ["<", ">", "&", "\u{2028}", "\u{2029}"] {
            assert!(!inner.contains(bad), "{bad:?} left in {inner}");
        }
        // Still the same JSON.
        let back: serde_json::Value = serde_json::from_str(inner).unwrap();
        assert_eq!(
            back["body"],
            "</script><script>alert(1)</script> <!-- & \u{2028}\u{2029} é"
        );
    }
}
