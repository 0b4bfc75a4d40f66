//! Messages and the `@name` mentions they carry.

use crate::{Attachment, MessageId, Millis, RoomId, UserId};

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
    /// When its author last changed its body.
    pub edited_at: Option<Millis>,
    /// When it was deleted: its body is then empty, and it has no mentions or reactions.
    pub deleted_at: Option<Millis>,
    /// Its reactions, each emoji once, in the order they were first added.
    pub reactions: Vec<Reaction>,
    /// The message it answers, as that one now is.
    pub reply_to: Option<Quote>,
    /// The files it carries, in the order its author put them; none once it is deleted.
    pub attachments: Vec<Attachment>,
}

/// The message a reply answers, as it now is (an edit shows, a deletion empties it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub id: MessageId,
    pub author: Author,
    pub body: String,
    pub deleted: bool,
}

/// One emoji on a message and who added it, in the order they did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    pub users: Vec<UserId>,
}

/// A full-text search of the messages a user can read (see [`crate::Store::search`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// Whose rooms are searched: never a room they are not a member of.
    pub user: UserId,
    /// Only this room (of theirs), when set.
    pub room: Option<RoomId>,
    /// Only messages older than this id: the next page after a hit.
    pub before: Option<MessageId>,
    pub limit: u32,
    /// The words, in SQLite FTS5's query syntax. The store does not parse what a person typed:
    /// `tidings-proto`'s `Query` renders it for each backend.
    pub fts5: String,
    /// The same words for PostgreSQL's `to_tsquery('simple', …)`.
    pub tsquery: String,
}

/// How long one search may run before it is stopped with [`crate::StoreError::TimedOut`].
pub const SEARCH_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The most distinct emoji one message carries.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 20;

/// Reactions from rows of (emoji, user, when), in any order: grouped by emoji, the groups in the
/// order their first reaction came, and the users of each in the order they reacted.
pub(crate) fn group_reactions(mut rows: Vec<(String, UserId, Millis)>) -> Vec<Reaction> {
    rows.sort_by(|a, b| (a.2, a.1, &a.0).cmp(&(b.2, b.1, &b.0)));
    let mut reactions: Vec<Reaction> = Vec::new();
    for (emoji, user, _) in rows {
        match reactions.iter_mut().find(|r| r.emoji == emoji) {
            Some(reaction) => reaction.users.push(user),
            None => reactions.push(Reaction {
                emoji,
                users: vec![user],
            }),
        }
    }
    reactions
}

/// A change someone asks for to a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new body (the author only); its mentions are found anew.
    Edit { body: String },
    /// The body, mentions and reactions go; a placeholder stays (the author, or an owner).
    Delete,
    /// The user adds this reaction.
    React { emoji: String },
    /// The user takes back this reaction.
    Unreact { emoji: String },
}

/// A change to message `message_id`, asked for by `user_id`.
#[derive(Debug, Clone)]
pub struct MessageChange {
    pub message_id: MessageId,
    pub user_id: UserId,
    pub change: Change,
    /// The user may delete anyone's message (an owner).
    pub may_delete_any: bool,
    pub at: Millis,
}

/// What [`Store::change_message`](crate::Store::change_message) did.
#[derive(Debug, Clone)]
pub enum Changed {
    /// The change is stored as entry `id` of the log; `message` is the message as it now is.
    Logged { id: MessageId, message: Message },
    /// There was nothing to change (the same body, a reaction already there or already gone, a
    /// message already deleted); the message as it is.
    Unchanged(Message),
}

/// What a replay hands on, in log order: a message (as it now is), or a change to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    Message(Message),
    /// Entry `id` of the log changed `message`, shown as it now is.
    Changed {
        id: MessageId,
        message: Message,
    },
}

impl Replayed {
    /// Its place in the log.
    pub fn id(&self) -> MessageId {
        match self {
            Replayed::Message(message) => message.id,
            Replayed::Changed { id, .. } => *id,
        }
    }

    /// The message, as it now is.
    pub fn message(&self) -> &Message {
        match self {
            Replayed::Message(message) | Replayed::Changed { message, .. } => message,
        }
    }
}

/// Merges a replay's messages and changes, each ascending, into the first `limit` of the log.
pub(crate) fn merge_replay(
    messages: Vec<Message>,
    changes: Vec<(MessageId, Message)>,
    limit: usize,
) -> Vec<Replayed> {
    let mut merged: Vec<Replayed> = messages
        .into_iter()
        .map(Replayed::Message)
        .chain(
            changes
                .into_iter()
                .map(|(id, message)| Replayed::Changed { id, message }),
        )
        .collect();
    merged.sort_by_key(Replayed::id);
    merged.truncate(limit);
    merged
}

/// What a change needs to know of its message.
pub(crate) struct Target {
    pub room_id: RoomId,
    pub author_id: UserId,
    pub body: String,
    pub deleted: bool,
}

/// Whether `change` may be made to `target` by a user who is (or is not) a `member` of its room:
/// `Ok(false)` when it would change nothing.
pub(crate) fn allowed(
    target: &Target,
    member: bool,
    change: &MessageChange,
) -> Result<bool, crate::StoreError> {
    use crate::StoreError::NotAllowed;
    if !member {
        return Err(NotAllowed);
    }
    match &change.change {
        Change::Delete if target.deleted => Ok(false),
        Change::Delete if target.author_id == change.user_id || change.may_delete_any => Ok(true),
        Change::Delete => Err(NotAllowed),
        // A deleted message is only a placeholder: nothing on it changes again.
        _ if target.deleted => Err(NotAllowed),
        Change::Edit { .. } if target.author_id != change.user_id => Err(NotAllowed),
        Change::Edit { body } => Ok(*body != target.body),
        Change::React { .. } | Change::Unreact { .. } => Ok(true),
    }
}

/// The audit entry an allowed `change` to `target` makes: an owner deleting someone else's
/// message is an administrative action; anything else is not audited.
pub(crate) fn audited(target: &Target, change: &MessageChange) -> Option<crate::AuditEntry> {
    if change.change != Change::Delete || target.author_id == change.user_id {
        return None;
    }
    let mut entry = crate::AuditEntry::new(
        change.at,
        Some(change.user_id),
        crate::AuditAction::MessageDeleted,
    );
    entry.user = Some(target.author_id);
    entry.message = Some(change.message_id);
    Some(entry)
}

/// A message to store.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub author_id: UserId,
    pub client_id: Option<String>,
    pub body: String,
    pub sent_at: Millis,
    /// The message it answers: one of the same room, not deleted. Its author is mentioned.
    pub reply_to: Option<MessageId>,
    /// Ids of the author's uploads to the room that no message carries yet.
    pub attachments: Vec<String>,
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
