//! Messages and the `@name` mentions they carry.

use crate::{MessageId, Millis, RoomId, UserId};

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub id: UserId,
    pub name: String,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Increasing in commit order across all rooms, never reused: the resume cursor.
    pub id: MessageId,
    pub room_id: RoomId,
    pub author: Author,
    pub body: String,
    pub sent_at: Millis,
    /// The sender's own id for the message, which makes a retried send idempotent.
    pub client_id: Option<String>,
    /// The members mentioned, sorted and deduplicated.
    pub mentions: Vec<UserId>,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub author_id: UserId,
    pub client_id: Option<String>,
    pub body: String,
    pub sent_at: Millis,
}

/// What [`Store::insert_message`] did.
#[derive(Debug, Clone)]
pub enum Inserted {
    /// The message was stored now.
    New(Message),
    /// The author already sent a message with this client id; this is the stored one and nothing
    /// new was stored.
    Duplicate(Message),
}

/// The `@name` mentions in `body`, in order of first appearance, deduplicated ignoring letter
/// case.
///
/// A name is the run of `[A-Za-z0-9_.-]` after the `@`, with trailing dots trimmed so that a
/// mention ending a sentence ("thanks @ana.") still matches. An `@` directly after a name
/// character is not a mention, so e-mail addresses ("ana@example.org") mention no one.
pub fn parse_mentions(body: &str) -> Vec<&str> {
    fn is_name_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
    }

    let bytes = body.as_bytes();
    let mut names: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'@' || (i > 0 && is_name_byte(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < bytes.len() && is_name_byte(bytes[end]) {
            end += 1;
        }
        i = end;
        // Name bytes are ASCII, so both ends fall on character boundaries.
        let name = body[start..end].trim_end_matches('.');
        if !name.is_empty() && !names.iter().any(|seen| seen.eq_ignore_ascii_case(name)) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_parsed() {
        assert_eq!(parse_mentions("hi @ana and @bob_2!"), ["ana", "bob_2"]);
        assert_eq!(parse_mentions("@ana @Ana @ana."), ["ana"]);
        assert_eq!(
            parse_mentions("thanks @j.doe... and @x-y"),
            ["j.doe", "x-y"]
        );
        assert_eq!(parse_mentions("@ @. @@ana"), ["ana"]);
        assert_eq!(parse_mentions("mail ana@example.org"), Vec::<&str>::new());
        assert_eq!(parse_mentions("ünï@ana, (@bob)"), ["ana", "bob"]);
        assert_eq!(parse_mentions("no mentions"), Vec::<&str>::new());
    }
}
