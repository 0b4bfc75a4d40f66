//! Encoding of Server-Sent Events (WHATWG HTML, "Server-sent events").

use bytes::Bytes;
use serde::Serialize;

/// One event: `id:` (when given), `event:`, one `data:` line of JSON, and the blank line that
/// dispatches it. JSON from serde_json never contains a raw newline, so one `data:` line suffices.
pub fn event(name: &str, id: Option<i64>, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_default();
    let mut out = String::with_capacity(json.len() + name.len() + 40);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    out.push_str(&json);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// The reconnection delay hint.
pub fn retry(ms: u64) -> Bytes {
    Bytes::from(format!("retry: {ms}\n\n"))
}

/// A comment line: ignored by clients, keeps proxies from closing an idle stream.
pub fn keepalive() -> Bytes {
    Bytes::from_static(b": keepalive\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_as_the_spec_says() {
        let e = event("message", Some(42), &serde_json::json!({"a": "x\ny"}));
        assert_eq!(
            &e[..],
            b"id: 42\nevent: message\ndata: {\"a\":\"x\\ny\"}\n\n".as_slice()
        );
        let e = event("lock", None, &serde_json::json!({}));
        assert_eq!(&e[..], b"event: lock\ndata: {}\n\n".as_slice());
    }
}
