//! Cached messages, and the unread bookkeeping that new ones cause.

use rusqlite::Row;
use rusqlite::types::Type;
use tidings_proto::v1::{
    Attachment, Message, MessageId, Quote, Reaction, RoomId, UserId, UserRef, preview,
};

use super::{LocalError, LocalStore, bad_value};

/// The columns of a cached message `m`, in the order `message_from_row` reads them; callers add
/// the FROM and what follows.
macro_rules! message_columns {
    () => {
        "SELECT m.id, m.room_id, m.author_id, m.author_name, m.body, m.sent_at, m.client_id,
                (SELECT group_concat(user_id) FROM mentions WHERE message_id = m.id),
                m.edited_at, m.deleted_at, m.reactions, m.quote, m.attachments"
    };
}

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    // The mentioned ids come as one comma-separated list (NULL when none).
    let mut mentions = match row.get_ref(7)?.as_str_or_null()? {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|id| {
                id.parse::<UserId>()
                    .map_err(|_| bad_value(7, Type::Text, format!("bad mentioned user id {id:?}")))
            })
            .collect::<rusqlite::Result<Vec<UserId>>>()?,
    };
    // group_concat does not promise an order; the wire type does.
    mentions.sort_unstable();
    let reactions = match row.get_ref(10)?.as_str_or_null()? {
        None => Vec::new(),
        Some(json) => serde_json::from_str::<Vec<Reaction>>(json)
            .map_err(|err| bad_value(10, Type::Text, format!("bad reactions: {err}")))?,
    };
    let reply_to = match row.get_ref(11)?.as_str_or_null()? {
        None => None,
        Some(json) => Some(
            serde_json::from_str::<Quote>(json)
                .map_err(|err| bad_value(11, Type::Text, format!("bad quote: {err}")))?,
        ),
    };
    let attachments = match row.get_ref(12)?.as_str_or_null()? {
        None => Vec::new(),
        Some(json) => serde_json::from_str::<Vec<Attachment>>(json)
            .map_err(|err| bad_value(12, Type::Text, format!("bad attachments: {err}")))?,
    };
    Ok(Message {
        id: row.get(0)?,
        room: row.get(1)?,
        author: UserRef {
            id: row.get(2)?,
            name: row.get(3)?,
        },
        body: row.get(4)?,
        sent_at: row.get(5)?,
        client_id: row.get(6)?,
        mentions,
        edited_at: row.get(8)?,
        deleted_at: row.get(9)?,
        reactions,
        reply_to,
        attachments,
    })
}

/// The quote column: the wire's JSON of the message answered.
fn quote_json(message: &Message) -> Option<String> {
    message
        .reply_to
        .as_ref()
        .map(|quote| serde_json::to_string(quote).unwrap_or_default())
}

/// How a reply quotes `message`, as it now is.
fn quote_of(message: &Message) -> Quote {
    Quote {
        id: message.id,
        author: message.author.clone(),
        preview: preview(&message.body),
        deleted: message.deleted_at.is_some(),
    }
}

/// The attachments column: the wire's JSON, or NULL when there are none.
fn attachments_json(message: &Message) -> Option<String> {
    (!message.attachments.is_empty())
        .then(|| serde_json::to_string(&message.attachments).unwrap_or_default())
}

/// The reactions column: the wire's JSON, or NULL when there are none.
fn reactions_json(message: &Message) -> Option<String> {
    (!message.reactions.is_empty())
        .then(|| serde_json::to_string(&message.reactions).unwrap_or_default())
}

impl LocalStore {
    /// Inserts or replaces by id; also raises the room's latest_id and (for messages not by `me`
    /// and after last_read_id) its unread counts when the message is new to the cache. Returns
    /// how many were new. It does not move the sync cursor: a message in the cache says nothing
    /// about the messages before it (a history page of one room is not a sync of all rooms), so
    /// only the chat channel, which knows what it has received in order, moves it.
    ///
    /// A message new to the cache but not newer than the room's `latest_id` (a history page, or a
    /// `sync` after the room list) is already counted in the server's `RoomState`, so it is not
    /// counted again. Messages are applied in id order whatever the order given. A message of a
    /// room that is not cached is stored without any count to raise.
    pub fn save_messages(&self, messages: &[Message], me: UserId) -> Result<usize, LocalError> {
        let mut ordered: Vec<&Message> = messages.iter().collect();
        ordered.sort_by_key(|message| message.id);
        self.write(|tx| {
            let mut exists = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?1)")?;
            let mut upsert = tx.prepare_cached(
                "INSERT INTO messages (id, room_id, author_id, author_name, body, sent_at, client_id,
                                       edited_at, deleted_at, reactions, reply_to, quote,
                                       attachments)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (id) DO UPDATE SET
                     room_id = excluded.room_id,
                     author_id = excluded.author_id,
                     author_name = excluded.author_name,
                     body = excluded.body,
                     sent_at = excluded.sent_at,
                     client_id = excluded.client_id,
                     edited_at = excluded.edited_at,
                     deleted_at = excluded.deleted_at,
                     reactions = excluded.reactions,
                     reply_to = excluded.reply_to,
                     quote = excluded.quote,
                     attachments = excluded.attachments",
            )?;
            let mut clear_mentions = tx.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?;
            let mut mention =
                tx.prepare_cached("INSERT OR IGNORE INTO mentions (message_id, user_id) VALUES (?1, ?2)")?;
            // The SET expressions all see the row as it was, so the counts compare against the
            // latest_id before this message.
            let mut count = tx.prepare_cached(
                "UPDATE rooms SET
                     unread = unread + (?2 > latest_id AND ?2 > last_read_id AND ?3),
                     unread_mentions = unread_mentions
                         + (?2 > latest_id AND ?2 > last_read_id AND ?3 AND ?4),
                     latest_id = max(latest_id, ?2)
                 WHERE id = ?1",
            )?;
            let mut new = 0;
            for message in &ordered {
                let known: bool = exists.query_row([message.id], |row| row.get(0))?;
                upsert.execute((
                    message.id,
                    message.room,
                    message.author.id,
                    &message.author.name,
                    &message.body,
                    message.sent_at,
                    &message.client_id,
                    message.edited_at,
                    message.deleted_at,
                    reactions_json(message),
                    message.reply_to.as_ref().map(|quote| quote.id),
                    quote_json(message),
                    attachments_json(message),
                ))?;
                clear_mentions.execute([message.id])?;
                for user in &message.mentions {
                    mention.execute((message.id, user))?;
                }
                if !known {
                    new += 1;
                    let by_someone_else = message.author.id != me;
                    let mentions_me = message.mentions.contains(&me);
                    count.execute((message.room, message.id, by_someone_else, mentions_me))?;
                }
            }
            Ok(new)
        })
    }

    /// Replaces a cached message by what a change made of it (an edit, a deletion, reactions);
    /// unread counts stay as they are. False when the message is not cached: a history page
    /// brings it as it is when it is wanted.
    pub fn apply_change(&self, message: &Message) -> Result<bool, LocalError> {
        self.write(|tx| {
            let updated = tx
                .prepare_cached(
                    "UPDATE messages SET body = ?2, edited_at = ?3, deleted_at = ?4, reactions = ?5,
                                         attachments = ?6
                     WHERE id = ?1",
                )?
                .execute((
                    message.id,
                    &message.body,
                    message.edited_at,
                    message.deleted_at,
                    reactions_json(message),
                    attachments_json(message),
                ))?;
            // The replies to it quote it as it now is.
            let quote = serde_json::to_string(&quote_of(message)).unwrap_or_default();
            tx.prepare_cached("UPDATE messages SET quote = ?2 WHERE reply_to = ?1")?
                .execute((message.id, quote))?;
            if updated == 0 {
                return Ok(false);
            }
            tx.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?
                .execute([message.id])?;
            let mut mention = tx.prepare_cached(
                "INSERT OR IGNORE INTO mentions (message_id, user_id) VALUES (?1, ?2)",
            )?;
            for user in &message.mentions {
                mention.execute((message.id, user))?;
            }
            Ok(true)
        })
    }

    /// The cached messages of the user's rooms (of `room` alone when set) with id < `before` that
    /// have every word of `fts5` (a query in FTS5's syntax, as the protocol's `Query` renders
    /// it), newest first, at most `limit`; never a deleted one.
    pub fn search(
        &self,
        fts5: &str,
        room: Option<RoomId>,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(concat!(
                message_columns!(),
                " FROM message_search s JOIN messages m ON m.id = s.rowid
                 WHERE message_search MATCH ?1 AND s.rowid < ?2
                   AND m.room_id IN (SELECT id FROM rooms) AND (?3 IS NULL OR m.room_id = ?3)
                   AND m.deleted_at IS NULL
                 ORDER BY s.rowid DESC
                 LIMIT ?4"
            ))?;
            let found = stmt
                .query_map(
                    (fts5, before.unwrap_or(MessageId::MAX), room, limit),
                    message_from_row,
                )?
                .collect::<Result<_, _>>()?;
            Ok(found)
        })
    }

    /// Up to `limit` cached messages of `room` with id < before (newest when None), oldest first.
    pub fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(concat!(
                message_columns!(),
                " FROM messages m
                 WHERE m.room_id = ?1 AND m.id < ?2
                 ORDER BY m.id DESC
                 LIMIT ?3"
            ))?;
            let mut page: Vec<Message> = stmt
                .query_map(
                    (room, before.unwrap_or(MessageId::MAX), limit),
                    message_from_row,
                )?
                .collect::<Result<_, _>>()?;
            page.reverse();
            Ok(page)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixture::{group, mentioning, message};
    use tidings_proto::v1::RoomState;

    const ME: UserId = 1;

    fn counts(store: &LocalStore, room: RoomId) -> (MessageId, u64, u64) {
        let room = store.room(room).unwrap().unwrap();
        (room.latest_id, room.unread, room.unread_mentions)
    }

    /// The cache's index follows every way a cached message changes: saved again with a new
    /// body, changed, deleted, or dropped with its room.
    #[test]
    fn search_follows_the_cached_messages() {
        let store = LocalStore::open_in_memory().unwrap();
        store.upsert_room(&group(1, "ops")).unwrap();
        let found = |fts5: &str| -> Vec<MessageId> {
            store
                .search(fts5, None, None, 10)
                .unwrap()
                .iter()
                .map(|m| m.id)
                .collect()
        };
        store
            .save_messages(
                &[
                    message(10, 1, 2, "old words"),
                    message(11, 1, 2, "old news"),
                ],
                ME,
            )
            .unwrap();
        assert_eq!(found("\"old\""), [11, 10]);
        store
            .save_messages(&[message(10, 1, 2, "new words")], ME)
            .unwrap();
        assert_eq!(found("\"old\""), [11]);
        assert_eq!(found("\"words\""), [10]);
        let deleted = Message {
            deleted_at: Some(5),
            ..message(11, 1, 2, "")
        };
        store.apply_change(&deleted).unwrap();
        assert!(found("\"old\"").is_empty());
        store.replace_rooms(&[]).unwrap();
        assert!(found("\"words\"").is_empty());
    }

    #[test]
    fn save_is_idempotent_and_counts_new_messages() {
        let store = LocalStore::open_in_memory().unwrap();
        store.upsert_room(&group(1, "ops")).unwrap();
        let batch = [message(10, 1, 2, "a"), mentioning(11, 1, 3, &[ME])];
        assert_eq!(store.save_messages(&batch, ME).unwrap(), 2);
        assert_eq!(counts(&store, 1), (11, 2, 1));

        // Saving the same messages again changes nothing.
        assert_eq!(store.save_messages(&batch, ME).unwrap(), 0);
        assert_eq!(counts(&store, 1), (11, 2, 1));
        assert_eq!(store.history(1, None, 10).unwrap(), batch.to_vec());

        // A replaced message keeps its place and is not counted again.
        let edited = Message {
            body: "a, edited".to_owned(),
            ..message(10, 1, 2, "")
        };
        let batch = [edited.clone(), message(12, 1, 2, "c")];
        assert_eq!(store.save_messages(&batch, ME).unwrap(), 1);
        assert_eq!(counts(&store, 1), (12, 3, 1));
        assert_eq!(
            store.history(1, None, 1).unwrap(),
            vec![message(12, 1, 2, "c")]
        );
        assert_eq!(store.history(1, Some(11), 10).unwrap(), vec![edited]);
        assert_eq!(store.save_messages(&[], ME).unwrap(), 0);
    }

    #[test]
    fn own_messages_and_those_at_or_below_the_marker_are_not_unread() {
        let store = LocalStore::open_in_memory().unwrap();
        store
            .upsert_room(&RoomState {
                last_read_id: 10,
                ..group(1, "ops")
            })
            .unwrap();
        let batch = [
            mentioning(9, 1, 2, &[ME]),
            mentioning(10, 1, 2, &[ME]),
            mentioning(11, 1, ME, &[ME]),
            message(12, 1, ME, "mine"),
            mentioning(13, 1, 2, &[3]),
        ];
        assert_eq!(store.save_messages(&batch, ME).unwrap(), 5);
        assert_eq!(counts(&store, 1), (13, 1, 0));

        store
            .save_messages(&[mentioning(14, 1, 3, &[3, ME])], ME)
            .unwrap();
        assert_eq!(counts(&store, 1), (14, 2, 1));
    }

    #[test]
    fn messages_the_room_state_already_counts_are_not_counted_again() {
        let store = LocalStore::open_in_memory().unwrap();
        // The server's view: up to 20 exists, 2 unread after the marker at 18.
        let state = RoomState {
            last_read_id: 18,
            latest_id: 20,
            unread: 2,
            unread_mentions: 0,
            ..group(1, "ops")
        };
        store.upsert_room(&state).unwrap();
        // The sync that follows, and an older history page, out of order.
        let batch = [
            message(20, 1, 2, "t"),
            message(19, 1, 2, "s"),
            message(5, 1, 2, "old"),
        ];
        assert_eq!(store.save_messages(&batch, ME).unwrap(), 3);
        assert_eq!(counts(&store, 1), (20, 2, 0));

        // Out-of-order newer messages are applied in id order.
        let batch = [message(22, 1, 2, "v"), message(21, 1, 2, "u")];
        assert_eq!(store.save_messages(&batch, ME).unwrap(), 2);
        assert_eq!(counts(&store, 1), (22, 4, 0));
    }

    #[test]
    fn messages_of_uncached_rooms_are_kept_without_counts() {
        let store = LocalStore::open_in_memory().unwrap();
        assert_eq!(
            store.save_messages(&[message(3, 8, 2, "x")], ME).unwrap(),
            1
        );
        assert_eq!(
            store.history(8, None, 5).unwrap(),
            vec![message(3, 8, 2, "x")]
        );
        assert_eq!(store.room(8).unwrap(), None);
    }

    #[test]
    fn saving_leaves_the_cursor_where_it_was() {
        let store = LocalStore::open_in_memory().unwrap();
        store.upsert_room(&group(1, "ops")).unwrap();
        store.upsert_room(&group(2, "dev")).unwrap();
        store.set_cursor(10).unwrap();
        // The newest page of one room, fetched while the others are still being synced: the
        // messages of other rooms between 10 and 500 have not been received.
        let page: Vec<Message> = (480..=500).map(|id| message(id, 2, 3, "dev")).collect();
        store.save_messages(&page, ME).unwrap();
        assert_eq!(store.cursor().unwrap(), 10);
        store.save_messages(&[message(4, 1, 2, "old")], ME).unwrap();
        assert_eq!(store.cursor().unwrap(), 10);
    }

    #[test]
    fn mentions_and_client_ids_round_trip() {
        let store = LocalStore::open_in_memory().unwrap();
        let sent = Message {
            client_id: Some("0123456789abcdef0123456789abcdef".to_owned()),
            mentions: vec![2, 7, 40],
            ..message(1, 1, ME, "@bo @cy @di")
        };
        store
            .save_messages(std::slice::from_ref(&sent), ME)
            .unwrap();
        assert_eq!(store.history(1, None, 1).unwrap(), vec![sent]);
    }

    #[test]
    fn history_pages_oldest_first_without_overlap() {
        let store = LocalStore::open_in_memory().unwrap();
        store.upsert_room(&group(1, "ops")).unwrap();
        store.upsert_room(&group(2, "dev")).unwrap();
        let mut all = Vec::new();
        for id in 1..=25 {
            let room = if id % 5 == 0 { 2 } else { 1 };
            all.push(message(id, room, 2, &format!("m{id}")));
        }
        store.save_messages(&all, ME).unwrap();
        let ops: Vec<MessageId> = all.iter().filter(|m| m.room == 1).map(|m| m.id).collect();

        let mut before = None;
        let mut pages = Vec::new();
        loop {
            let page = store.history(1, before, 7).unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 7);
            assert!(page.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
            assert!(page.iter().all(|m| m.room == 1));
            before = Some(page[0].id);
            pages.push(page.iter().map(|m| m.id).collect::<Vec<_>>());
        }
        assert_eq!(pages.len(), 3);
        assert_eq!(
            pages[0],
            ops[ops.len() - 7..].to_vec(),
            "the newest page first"
        );
        let joined: Vec<MessageId> = pages.into_iter().rev().flatten().collect();
        assert_eq!(joined, ops, "every message once, none twice");

        assert!(store.history(1, None, 0).unwrap().is_empty());
        assert_eq!(store.history(1, Some(3), 10).unwrap().len(), 2);
    }
}
