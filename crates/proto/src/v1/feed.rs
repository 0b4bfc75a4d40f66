//! The Server-Sent Events feed (`/api/events`): one stream per login.
//!
//! Each event's `event:` field is one of the `EVENT_*` names below and its `data:` is the JSON of
//! the matching type. Only `message` events carry an `id:` (the message id), so `Last-Event-ID`
//! always names the last message the client saw.

use serde::{Deserialize, Serialize};

use super::model::{MessageId, Millis, RoomId, UserRef};

/// The session's status, sent every few seconds.
pub const EVENT_SESSION: &str = "session";
/// The session ended; the stream ends after this event.
pub const EVENT_LOCK: &str = "lock";
/// A new message in one of the user's rooms.
pub const EVENT_MESSAGE: &str = "message";
/// The client's cursor is older than the server can replay: reload history instead.
pub const EVENT_RESET: &str = "reset";
/// A message an alert was raised for has been deleted: withdraw its notification.
pub const EVENT_RETRACT: &str = "retract";
/// Query parameter that carries the cursor for clients that cannot set `Last-Event-ID`.
pub const LAST_EVENT_ID_PARAM: &str = "last_event_id";
/// Longest preview of a message body in a `message` event, in characters.
pub const PREVIEW_CHARS: usize = 140;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Active,
    /// Active, but one of its deadlines is near: a good time to warn the user.
    Expiring,
    Expired,
    Revoked,
}

/// `event: session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct SessionStatus {
    pub state: SessionState,
    /// The server's clock when this was sent.
    pub now: Millis,
    /// The absolute end of the session.
    pub expires_at: Millis,
    /// When the session ends if the user does nothing until then.
    pub idle_expires_at: Millis,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LockReason {
    /// Its absolute lifetime or its idle timeout ran out.
    Expired,
    /// It was revoked from another session, or logged out.
    Revoked,
}

/// `event: lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Lock {
    pub reason: LockReason,
}

/// `event: message`: enough to raise a notification without fetching anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct MessageAlert {
    pub room: RoomId,
    pub id: MessageId,
    pub author: UserRef,
    /// The start of the body, at most [`PREVIEW_CHARS`] characters.
    pub preview: String,
    pub sent_at: Millis,
    /// Whether the message mentions the user this feed belongs to.
    pub mentions_you: bool,
}

/// `event: reset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Reset {
    /// The newest message id; the feed continues after it.
    pub latest_id: MessageId,
}

/// `event: retract`: the message `id` of `room` was deleted. Its event id is the deletion's
/// place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Retract {
    pub room: RoomId,
    pub id: MessageId,
}

/// The start of `body`, cut at a character boundary to at most [`PREVIEW_CHARS`] characters. A cut
/// preview ends in `…`, which counts as one of them.
pub fn preview(body: &str) -> String {
    if body.chars().nth(PREVIEW_CHARS).is_none() {
        return body.to_owned();
    }
    // The ellipsis that marks the cut counts towards the limit, so the body keeps one character
    // fewer than the limit.
    let cut = body
        .char_indices()
        .nth(PREVIEW_CHARS - 1)
        .map_or(body.len(), |(at, _)| at);
    format!("{}…", &body[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_left_alone() {
        for body in ["", "hi", "hé 😀 \"quoted\"\nnext line"] {
            assert_eq!(preview(body), body);
        }
        let exactly = "é".repeat(PREVIEW_CHARS);
        assert_eq!(preview(&exactly), exactly);
    }

    #[test]
    fn long_text_is_cut_to_the_limit_with_an_ellipsis() {
        let body = "a".repeat(PREVIEW_CHARS + 1);
        let cut = preview(&body);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS);
        assert!(cut.ends_with('…'), "{cut}");
        assert!(body.starts_with(cut.trim_end_matches('…')));
    }

    #[test]
    fn multibyte_text_is_cut_on_a_character_boundary() {
        // Characters of one, two, three and four bytes, so the cut lands after each width in turn.
        for unit in ["a", "é", "中", "😀", "aé中😀"] {
            let body = unit.repeat(PREVIEW_CHARS + 1);
            let cut = preview(&body);
            assert_eq!(cut.chars().count(), PREVIEW_CHARS, "{unit}: {cut}");
            let kept = cut
                .strip_suffix('…')
                .unwrap_or_else(|| panic!("{unit}: {cut}"));
            assert!(body.starts_with(kept), "{unit}: {cut}");
        }
    }
}
