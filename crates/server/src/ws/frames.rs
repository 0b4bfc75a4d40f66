//! A client's WebSocket frames (RFC 6455 §5), from bytes to messages: each frame's header parsed
//! (tungstenite's parser), its payload unmasked and checked, fragments joined, text checked as
//! UTF-8 as it comes — and the frames a server sends, encoded.
//!
//! It does no IO: the socket pushes what it read and takes what is whole. Between frames it holds
//! no memory, which is what an idle connection is most of the time.

use std::io::Cursor;

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

/// A message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    /// To be answered with a pong carrying the same payload.
    Ping(Vec<u8>),
    Pong,
    /// The client's close, with its code if it gave one (an allowed one: checked).
    Close(Option<u16>),
}

/// Why what the client sent is refused: each is a close code (RFC 6455 §7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A frame or message over the limit: 1009.
    TooBig,
    /// A text message or close reason that is not UTF-8: 1007.
    NotUtf8,
    /// Anything else against the protocol: 1002.
    Protocol(&'static str),
}

/// What the client has sent and is not whole yet.
#[derive(Debug, Default)]
pub struct Reader {
    /// Bytes read and not parsed: part of a frame. Empty, and holding no memory, between frames.
    unparsed: Vec<u8>,
    /// A fragmented message's parts so far.
    message: Option<Box<Fragmented>>,
    /// How much of the payload of a text frame still arriving is known to be UTF-8.
    arriving: usize,
}

#[derive(Debug)]
struct Fragmented {
    text: bool,
    bytes: Vec<u8>,
    /// How much of `bytes` is known to be UTF-8 (text only).
    checked: usize,
}

impl Reader {
    /// A reader that has `bytes` already (read with the upgrade's request).
    pub fn with(bytes: &[u8]) -> Reader {
        Reader {
            unparsed: bytes.to_vec(),
            ..Reader::default()
        }
    }

    /// Takes bytes read from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        self.unparsed.extend_from_slice(bytes);
    }

    /// The next message or control frame, once whole; frames and messages over `limit` bytes
    /// are refused as soon as their length is known.
    pub fn next(&mut self, limit: usize) -> Result<Option<Incoming>, Refused> {
        while let Some((header, payload)) = self.frame(limit)? {
            if let Some(incoming) = self.take(header, payload)? {
                return Ok(Some(incoming));
            }
        }
        Ok(None)
    }

    /// The next whole frame, unmasked.
    fn frame(&mut self, limit: usize) -> Result<Option<(FrameHeader, Vec<u8>)>, Refused> {
        if self.unparsed.is_empty() {
            return Ok(None);
        }
        let mut cursor = Cursor::new(self.unparsed.as_slice());
        let Some((header, length)) =
            FrameHeader::parse(&mut cursor).map_err(|_| Refused::Protocol("unknown opcode"))?
        else {
            return Ok(None);
        };
        // A fragment adds to its message, which the limit counts as a whole.
        let joined = match (header.opcode, self.message.as_deref()) {
            (OpCode::Data(Data::Continue), Some(message)) => message.bytes.len() as u64,
            _ => 0,
        };
        if joined.saturating_add(length) > limit as u64 {
            return Err(Refused::TooBig);
        }
        let Some(mask) = header.mask else {
            return Err(Refused::Protocol("a client's frames must be masked"));
        };
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(Refused::Protocol("reserved bits set with no extension"));
        }
        let start = cursor.position() as usize;
        let end = start + length as usize;
        if self.unparsed.len() < end {
            self.check_arriving(header.opcode, mask, start)?;
            self.unparsed.reserve_exact(end - self.unparsed.len());
            return Ok(None);
        }
        self.arriving = 0;
        let mut payload = self.unparsed[start..end].to_vec();
        unmask(&mut payload, mask, 0);
        if end == self.unparsed.len() {
            self.unparsed = Vec::new();
        } else {
            self.unparsed.drain(..end);
        }
        Ok(Some((header, payload)))
    }

    /// Refuses a text frame still arriving as soon as what has arrived of it cannot be UTF-8,
    /// not only once it is whole: a client that sends a long frame slowly learns at once.
    fn check_arriving(
        &mut self,
        opcode: OpCode,
        mask: [u8; 4],
        start: usize,
    ) -> Result<(), Refused> {
        // A character begun in the message's last fragment, to be ended by this one.
        let begun: &[u8] = match (opcode, self.message.as_deref()) {
            (OpCode::Data(Data::Text), None) => &[],
            (OpCode::Data(Data::Continue), Some(message)) if message.text => {
                &message.bytes[message.checked..]
            }
            _ => return Ok(()),
        };
        let from = self.arriving;
        let begun = if from == 0 { begun } else { &[] };
        let mut arrived = begun.to_vec();
        arrived.extend_from_slice(&self.unparsed[start + from..]);
        unmask(&mut arrived[begun.len()..], mask, from);
        let valid = match std::str::from_utf8(&arrived) {
            Ok(_) => arrived.len(),
            // The end cut inside a character: only incomplete.
            Err(err) if err.error_len().is_none() => err.valid_up_to(),
            Err(_) => return Err(Refused::NotUtf8),
        };
        self.arriving = (from + valid).saturating_sub(begun.len());
        Ok(())
    }

    /// A frame taken into the message it belongs to: what is whole, if anything.
    fn take(&mut self, header: FrameHeader, payload: Vec<u8>) -> Result<Option<Incoming>, Refused> {
        let data = match header.opcode {
            OpCode::Control(control) => {
                if !header.is_final {
                    return Err(Refused::Protocol("a fragmented control frame"));
                }
                if payload.len() > 125 {
                    return Err(Refused::Protocol("a control frame over 125 bytes"));
                }
                return match control {
                    Control::Ping => Ok(Some(Incoming::Ping(payload))),
                    Control::Pong => Ok(Some(Incoming::Pong)),
                    Control::Close => close(&payload).map(|code| Some(Incoming::Close(code))),
                    Control::Reserved(_) => Err(Refused::Protocol("unknown opcode")),
                };
            }
            OpCode::Data(data) => data,
        };
        match (data, &mut self.message) {
            (Data::Continue, None) => Err(Refused::Protocol("a continuation of no message")),
            (Data::Continue, Some(message)) => {
                message.extend(&payload)?;
                if !header.is_final {
                    return Ok(None);
                }
                self.message
                    .take()
                    .map_or(Ok(None), |m| m.finish().map(Some))
            }
            (_, Some(_)) => Err(Refused::Protocol("a new message before the last one ended")),
            (Data::Text | Data::Binary, None) => {
                let text = data == Data::Text;
                if header.is_final {
                    return whole(text, payload).map(Some);
                }
                let mut message = Box::new(Fragmented {
                    text,
                    bytes: Vec::new(),
                    checked: 0,
                });
                message.extend(&payload)?;
                self.message = Some(message);
                Ok(None)
            }
            (Data::Reserved(_), None) => Err(Refused::Protocol("unknown opcode")),
        }
    }
}

impl Fragmented {
    /// Adds a fragment (the reader has checked the limit).
    fn extend(&mut self, payload: &[u8]) -> Result<(), Refused> {
        self.bytes.extend_from_slice(payload);
        if self.text {
            // Refused at the first byte that cannot be UTF-8, not at the end: a character cut
            // between fragments is only incomplete.
            match std::str::from_utf8(&self.bytes[self.checked..]) {
                Ok(_) => self.checked = self.bytes.len(),
                Err(err) if err.error_len().is_none() => self.checked += err.valid_up_to(),
                Err(_) => return Err(Refused::NotUtf8),
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Incoming, Refused> {
        whole(self.text, self.bytes)
    }
}

fn whole(text: bool, payload: Vec<u8>) -> Result<Incoming, Refused> {
    if text {
        String::from_utf8(payload)
            .map(Incoming::Text)
            .map_err(|_| Refused::NotUtf8)
    } else {
        Ok(Incoming::Binary(payload))
    }
}

/// A close frame's code, checked (RFC 6455 §5.5.1, §7.4).
fn close(payload: &[u8]) -> Result<Option<u16>, Refused> {
    match payload {
        [] => Ok(None),
        [_] => Err(Refused::Protocol("a close frame with half a code")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !CloseCode::from(code).is_allowed() {
                return Err(Refused::Protocol("a close code not to be sent"));
            }
            std::str::from_utf8(reason).map_err(|_| Refused::NotUtf8)?;
            Ok(Some(code))
        }
    }
}

/// Unmasks `payload`, which starts `offset` bytes into its frame's payload.
fn unmask(payload: &mut [u8], mask: [u8; 4], offset: usize) {
    for (byte, key) in payload.iter_mut().zip(mask.iter().cycle().skip(offset % 4)) {
        *byte ^= key;
    }
}

/// A whole, unmasked frame as a server sends it.
pub fn encode(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let length = payload.len() as u64;
    let mut frame = Vec::with_capacity(header.len(length) + payload.len());
    // Writing to a Vec cannot fail.
    let _ = header.format(length, &mut frame);
    frame.extend_from_slice(payload);
    frame
}

/// The pong that answers a ping with `payload`.
pub fn pong(payload: &[u8]) -> Vec<u8> {
    encode(OpCode::Control(Control::Pong), payload)
}

/// A close frame with `code` and `reason` (cut to fit a control frame, at a character).
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(OpCode::Control(Control::Close), &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1024;

    /// A frame as a client sends it: masked.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![first];
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=65535 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        let mut body = payload.to_vec();
        unmask(&mut body, mask, 0);
        frame.extend_from_slice(&body);
        frame
    }

    const TEXT: u8 = 0x81;
    const FIRST_TEXT: u8 = 0x01;
    const CONTINUE: u8 = 0x00;
    const LAST: u8 = 0x80;

    #[test]
    fn a_message_read_a_byte_at_a_time_comes_out_whole_and_leaves_nothing_held() {
        let mut reader = Reader::default();
        let frame = masked(TEXT, "héllo".as_bytes());
        for (i, byte) in frame.iter().enumerate() {
            assert_eq!(
                reader.next(LIMIT),
                Ok(None),
                "nothing whole before byte {i}"
            );
            reader.push(&[*byte]);
        }
        assert_eq!(reader.next(LIMIT), Ok(Some(Incoming::Text("héllo".into()))));
        assert_eq!(
            reader.unparsed.capacity(),
            0,
            "no memory held between frames"
        );
        assert_eq!(reader.next(LIMIT), Ok(None));
    }

    #[test]
    fn frames_read_together_come_out_one_at_a_time_in_order() {
        let mut bytes = masked(TEXT, b"one");
        bytes.extend(masked(0x89, b"are you there"));
        bytes.extend(masked(TEXT, b"two"));
        bytes.extend(&masked(TEXT, b"three")[..4]);
        let mut reader = Reader::with(&bytes);
        assert_eq!(reader.next(LIMIT), Ok(Some(Incoming::Text("one".into()))));
        assert_eq!(
            reader.next(LIMIT),
            Ok(Some(Incoming::Ping(b"are you there".to_vec())))
        );
        assert_eq!(reader.next(LIMIT), Ok(Some(Incoming::Text("two".into()))));
        assert_eq!(reader.next(LIMIT), Ok(None), "the last is not whole");
        reader.push(&masked(TEXT, b"three")[4..]);
        assert_eq!(reader.next(LIMIT), Ok(Some(Incoming::Text("three".into()))));
    }

    #[test]
    fn fragments_are_joined_with_control_frames_between_them() {
        let mut reader = Reader::default();
        reader.push(&masked(FIRST_TEXT, "caf".as_bytes()));
        reader.push(&masked(0x8a, b""));
        // "é" cut between two fragments.
        reader.push(&masked(CONTINUE, &"é".as_bytes()[..1]));
        reader.push(&masked(CONTINUE | LAST, &"é!".as_bytes()[1..]));
        assert_eq!(reader.next(LIMIT), Ok(Some(Incoming::Pong)));
        assert_eq!(reader.next(LIMIT), Ok(Some(Incoming::Text("café!".into()))));
    }

    #[test]
    fn invalid_utf8_is_refused_at_the_fragment_that_has_it() {
        let mut reader = Reader::default();
        reader.push(&masked(FIRST_TEXT, b"ok \xff"));
        assert_eq!(reader.next(LIMIT), Err(Refused::NotUtf8));
        let mut reader = Reader::with(&masked(TEXT, b"\xce"));
        assert_eq!(reader.next(LIMIT), Err(Refused::NotUtf8), "cut at the end");
    }

    #[test]
    fn a_text_frame_still_arriving_is_refused_at_the_first_byte_that_cannot_be_utf8() {
        let good = "κόσμε, ".as_bytes();
        let mut payload = good.to_vec();
        payload.push(0xff);
        payload.extend_from_slice(b"and more that never needs to arrive");
        let frame = masked(TEXT, &payload);
        let bad = 2 + 4 + good.len();
        let mut reader = Reader::default();
        // Every character cut at every byte is only incomplete.
        for (i, byte) in frame[..bad].iter().enumerate() {
            reader.push(&[*byte]);
            assert_eq!(reader.next(LIMIT), Ok(None), "after byte {i}");
        }
        reader.push(&frame[bad..bad + 1]);
        assert_eq!(reader.next(LIMIT), Err(Refused::NotUtf8));

        // A character begun in one fragment must be ended by the next, even before it is whole.
        for (continued, refused) in [(&b"\xa9!"[..], false), (b"A", true)] {
            let mut reader = Reader::default();
            reader.push(&masked(FIRST_TEXT, b"caf\xc3"));
            assert_eq!(reader.next(LIMIT), Ok(None));
            let mut rest = continued.to_vec();
            rest.extend_from_slice(b" and the rest of the fragment");
            let fragment = masked(CONTINUE | LAST, &rest);
            reader.push(&fragment[..2 + 4 + continued.len()]);
            let expected = if refused {
                Err(Refused::NotUtf8)
            } else {
                Ok(None)
            };
            assert_eq!(reader.next(LIMIT), expected, "{continued:?}");
        }
    }

    #[test]
    fn frames_and_messages_over_the_limit_are_refused_before_they_are_read() {
        let mut reader = Reader::default();
        // Only the header: refused from the length it announces.
        reader.push(&masked(TEXT, &vec![b'a'; LIMIT + 1])[..8]);
        assert_eq!(reader.next(LIMIT), Err(Refused::TooBig));
        let mut reader = Reader::default();
        reader.push(&masked(FIRST_TEXT, &vec![b'a'; LIMIT / 2 + 1]));
        assert_eq!(reader.next(LIMIT), Ok(None));
        // The fragment that takes the message over: refused from its header alone too.
        reader.push(&masked(CONTINUE | LAST, &vec![b'a'; LIMIT / 2])[..8]);
        assert_eq!(reader.next(LIMIT), Err(Refused::TooBig));
    }

    #[test]
    fn what_breaks_the_protocol_is_refused() {
        let cases: [(&str, Vec<u8>); 8] = [
            ("unmasked", {
                let mut frame = masked(TEXT, b"x");
                frame[1] &= 0x7f;
                frame.drain(2..6);
                frame
            }),
            ("reserved bit", masked(TEXT | 0x40, b"x")),
            ("reserved data opcode", masked(0x83, b"x")),
            ("reserved control opcode", masked(0x8b, b"x")),
            ("fragmented ping", masked(0x09, b"x")),
            ("big ping", masked(0x89, &[0; 126])),
            ("continuation of nothing", masked(CONTINUE | LAST, b"x")),
            ("close with one byte", masked(0x88, &[3])),
        ];
        for (case, bytes) in cases {
            let mut reader = Reader::with(&bytes);
            assert!(
                matches!(reader.next(LIMIT), Err(Refused::Protocol(_))),
                "{case}"
            );
        }
        let mut reader = Reader::with(&masked(FIRST_TEXT, b"a"));
        reader.push(&masked(TEXT, b"b"));
        assert!(matches!(reader.next(LIMIT), Err(Refused::Protocol(_))));
    }

    #[test]
    fn a_close_gives_its_code_when_allowed() {
        let close = |payload: &[u8]| Reader::with(&masked(0x88, payload)).next(LIMIT);
        assert_eq!(close(b""), Ok(Some(Incoming::Close(None))));
        assert_eq!(close(b"\x03\xe8bye"), Ok(Some(Incoming::Close(Some(1000)))));
        assert_eq!(close(b"\x0f\xa0"), Ok(Some(Incoming::Close(Some(4000)))));
        for code in [999u16, 1004, 1005, 1006, 1016, 2999, 5000] {
            assert!(
                matches!(close(&code.to_be_bytes()), Err(Refused::Protocol(_))),
                "{code}"
            );
        }
        assert_eq!(close(b"\x03\xe8\xff"), Err(Refused::NotUtf8));
    }

    #[test]
    fn a_server_frame_is_encoded_unmasked_with_its_length() {
        assert_eq!(encode(OpCode::Control(Control::Ping), b""), [0x89, 0x00]);
        let long = encode(OpCode::Data(Data::Binary), &[7; 300]);
        assert_eq!(&long[..4], &[0x82, 126, 1, 44]);
        assert_eq!(long.len(), 304);
        let close = close_frame(1001, &"é".repeat(100));
        assert_eq!(close[1] as usize, close.len() - 2);
        assert!(close.len() - 2 <= 125);
        assert!(
            std::str::from_utf8(&close[4..]).is_ok(),
            "cut at a character"
        );
    }
}
