//! The probe a publisher puts in each message body: a sequence number and the moment it was
//! posted, so every subscriber can tell which message arrived and how long it took.
//!
//! Subscribers find the probe by scanning the raw frame (a Tidings `message` frame, an SSE
//! `message` event whose preview is the body, or a peer's verbatim broadcast) instead of decoding
//! the JSON: at hundreds of thousands of deliveries a second the load generator shares the cores
//! with the server, and every cycle it spends parsing is taken from the server under test.

use std::time::Instant;

const MARK: &[u8] = b"tb:";

/// The clock every task of one run shares: microseconds since the run began.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn micros(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// What a probe carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub seq: u64,
    pub sent_micros: u64,
}

impl Probe {
    /// The message body: `tb:<seq>:<sent micros>`. No `@`, so it mentions nobody; no character
    /// JSON escapes, so it appears verbatim inside any encoding of the message.
    pub fn body(&self) -> String {
        format!("tb:{}:{}", self.seq, self.sent_micros)
    }

    /// Every probe in `frame`, in order: a batch of the HTTP transports carries several.
    pub fn find_all(mut frame: &[u8]) -> impl Iterator<Item = Probe> + '_ {
        std::iter::from_fn(move || {
            let (probe, end) = Probe::find_from(frame)?;
            frame = &frame[end..];
            Some(probe)
        })
    }

    /// The first probe in `frame` and where it ends.
    fn find_from(frame: &[u8]) -> Option<(Probe, usize)> {
        let start = memchr::memmem::find(frame, MARK)? + MARK.len();
        let rest = &frame[start..];
        let (seq, used) = digits(rest)?;
        let rest = rest[used..].strip_prefix(b":")?;
        let (sent_micros, used_too) = digits(rest)?;
        Some((Probe { seq, sent_micros }, start + used + 1 + used_too))
    }
}

/// The decimal number at the start of `bytes`, and how many bytes it took.
fn digits(bytes: &[u8]) -> Option<(u64, usize)> {
    let len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 19 {
        return None;
    }
    let value = bytes[..len]
        .iter()
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    Some((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_of_a_batch_is_found() {
        let batch =
            br#"{"cursor":9,"frames":[{"body":"tb:1:10"},{"body":"tb:2:20"},{"type":"typing"}]}"#;
        let found: Vec<Probe> = Probe::find_all(batch).collect();
        assert_eq!(
            found,
            [
                Probe {
                    seq: 1,
                    sent_micros: 10
                },
                Probe {
                    seq: 2,
                    sent_micros: 20
                }
            ]
        );
    }

    #[test]
    fn a_body_round_trips() {
        let probe = Probe {
            seq: 42,
            sent_micros: 1_234_567,
        };
        assert_eq!(Probe::find_all(probe.body().as_bytes()).next(), Some(probe));
    }

    #[test]
    fn found_inside_a_chat_frame_and_an_sse_event() {
        let frame = br#"{"type":"message","id":9,"room":2,"author":{"id":3,"name":"pub"},"body":"tb:7:99","sent_at":1,"client_id":"p7"}"#;
        assert_eq!(
            Probe::find_all(frame).next(),
            Some(Probe {
                seq: 7,
                sent_micros: 99
            })
        );
        let event = b"id: 9\nevent: message\ndata: {\"room\":2,\"id\":9,\"preview\":\"tb:8:100\",\"mentions_you\":false}\n\n";
        assert_eq!(
            Probe::find_all(event).next(),
            Some(Probe {
                seq: 8,
                sent_micros: 100
            })
        );
    }

    #[test]
    fn frames_without_a_whole_probe_have_none() {
        for frame in [
            &b""[..],
            b"{\"type\":\"presence\"}",
            b"tb:",
            b"tb:12",
            b"tb:12:",
            b"tb::5",
            b"tb:x:5",
            b"tb:99999999999999999999:1",
        ] {
            assert_eq!(
                Probe::find_all(frame).next(),
                None,
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }
}
