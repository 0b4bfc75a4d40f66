//! The outbox: messages written but not yet acknowledged by the server.
//!
//! A message is stored here (durably: `synchronous=FULL`) before anything is sent, and removed
//! once the server's ack names its `client_id`. Resending after a crash or a reconnect is safe
//! because the server deduplicates by `client_id`.

use rusqlite::Row;
use tidings_proto::v1::{Attachment, MessageId, Millis, RoomId};

use rusqlite::types::Type;

use super::{LocalError, LocalStore, bad_value};

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// 128 random bits in lowercase hex: the idempotency key the server echoes in its ack.
    pub client_id: String,
    pub room: RoomId,
    pub body: String,
    /// When the user wrote it.
    pub created_at: Millis,
    /// How many sends were tried so far.
    pub attempts: u32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// The message of the same room it answers.
    pub reply_to: Option<MessageId>,
    /// The uploads it carries (already on the server).
    pub attachments: Vec<Attachment>,
}

/// A message as its author wrote it, before it goes to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub room: RoomId,
    pub body: String,
    /// A message of the same room it answers.
    pub reply_to: Option<MessageId>,
    /// Files uploaded to the room for it (see `Client::upload`).
    pub attachments: Vec<Attachment>,
}

impl Draft {
    /// Plain text, answering nothing, carrying nothing.
    pub fn text(room: RoomId, body: &str) -> Draft {
        Draft {
            room,
            body: body.to_owned(),
            reply_to: None,
            attachments: Vec::new(),
        }
    }
}

fn outgoing_from_row(row: &Row<'_>) -> rusqlite::Result<Outgoing> {
    Ok(Outgoing {
        client_id: row.get(0)?,
        room: row.get(1)?,
        body: row.get(2)?,
        created_at: row.get(3)?,
        attempts: row.get(4)?,
        last_error: row.get(5)?,
        reply_to: row.get(6)?,
        attachments: match row.get_ref(7)?.as_str_or_null()? {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json).map_err(|err| {
                bad_value(7, Type::Text, format!("bad outbox attachments: {err}"))
            })?,
        },
    })
}

/// A fresh idempotency key: 128 random bits, as 32 lowercase hex digits.
fn new_client_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl LocalStore {
    /// Writes a message to the outbox under a new random `client_id`; it is on disk when this
    /// returns.
    pub fn enqueue(&self, draft: &Draft, now: Millis) -> Result<Outgoing, LocalError> {
        let outgoing = Outgoing {
            client_id: new_client_id(),
            room: draft.room,
            body: draft.body.clone(),
            created_at: now,
            attempts: 0,
            last_error: None,
            reply_to: draft.reply_to,
            attachments: draft.attachments.clone(),
        };
        let attachments = (!draft.attachments.is_empty())
            .then(|| serde_json::to_string(&draft.attachments).unwrap_or_default());
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO outbox (client_id, room_id, body, created_at, reply_to, attachments)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            stmt.execute((
                &outgoing.client_id,
                draft.room,
                &draft.body,
                now,
                draft.reply_to,
                attachments,
            ))?;
            Ok(())
        })?;
        Ok(outgoing)
    }

    /// Every message waiting to be sent, oldest (first enqueued) first.
    pub fn outbox(&self) -> Result<Vec<Outgoing>, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT client_id, room_id, body, created_at, attempts, last_error, reply_to,
                        attachments
                 FROM outbox ORDER BY seq",
            )?;
            let outbox = stmt
                .query_map([], outgoing_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(outbox)
        })
    }

    /// Removes a message once the server acknowledged it; `false` if it was not in the outbox.
    pub fn remove_outgoing(&self, client_id: &str) -> Result<bool, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("DELETE FROM outbox WHERE client_id = ?1")?;
            Ok(stmt.execute([client_id])? > 0)
        })
    }

    /// Records a send attempt: `attempts` goes up by one and `last_error` becomes `error` (`None`
    /// clears it). A message no longer in the outbox is ignored.
    pub fn note_attempt(&self, client_id: &str, error: Option<&str>) -> Result<(), LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE client_id = ?1",
            )?;
            stmt.execute((client_id, error))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_128_bit_hex_and_distinct() {
        let store = LocalStore::open_in_memory().unwrap();
        let a = store.enqueue(&Draft::text(1, "a"), 1).unwrap();
        let b = store.enqueue(&Draft::text(1, "b"), 1).unwrap();
        for id in [&a.client_id, &b.client_id] {
            assert_eq!(id.len(), 32);
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        assert_ne!(a.client_id, b.client_id);
    }

    #[test]
    fn a_draft_keeps_its_reply_and_attachments() {
        let store = LocalStore::open_in_memory().unwrap();
        let photo = Attachment {
            id: "a1".to_owned(),
            room: 3,
            name: "photo.png".to_owned(),
            content_type: "image/png".to_owned(),
            size: 1234,
            image: Some(tidings_proto::v1::ImageSize {
                width: 40,
                height: 30,
            }),
        };
        let draft = Draft {
            room: 3,
            body: String::new(),
            reply_to: Some(9),
            attachments: vec![photo.clone()],
        };
        let queued = store.enqueue(&draft, 7).unwrap();
        let stored = store.outbox().unwrap();
        assert_eq!(stored, [queued]);
        assert_eq!(stored[0].attachments, [photo]);
        assert_eq!(stored[0].reply_to, Some(9));
    }

    #[test]
    fn outbox_is_oldest_first_and_remove_takes_one() {
        let store = LocalStore::open_in_memory().unwrap();
        assert!(store.outbox().unwrap().is_empty());
        let first = store.enqueue(&Draft::text(1, "first"), 300).unwrap();
        // Enqueue order wins over timestamps, which a clock change can reorder.
        let second = store.enqueue(&Draft::text(2, "second"), 100).unwrap();
        let third = store.enqueue(&Draft::text(1, "third"), 200).unwrap();
        assert_eq!(
            first,
            Outgoing {
                client_id: first.client_id.clone(),
                room: 1,
                body: "first".to_owned(),
                created_at: 300,
                attempts: 0,
                last_error: None,
                reply_to: None,
                attachments: Vec::new(),
            }
        );
        assert_eq!(
            store.outbox().unwrap(),
            vec![first.clone(), second.clone(), third.clone()]
        );

        assert!(store.remove_outgoing(&second.client_id).unwrap());
        assert!(!store.remove_outgoing(&second.client_id).unwrap());
        assert!(!store.remove_outgoing("not-a-client-id").unwrap());
        assert_eq!(store.outbox().unwrap(), vec![first, third]);
    }

    #[test]
    fn attempts_count_and_keep_the_last_error() {
        let store = LocalStore::open_in_memory().unwrap();
        let out = store.enqueue(&Draft::text(1, "hi"), 5).unwrap();
        store
            .note_attempt(&out.client_id, Some("timed out"))
            .unwrap();
        store
            .note_attempt(&out.client_id, Some("rate limited"))
            .unwrap();
        let now = &store.outbox().unwrap()[0];
        assert_eq!(
            (now.attempts, now.last_error.as_deref()),
            (2, Some("rate limited"))
        );
        store.note_attempt(&out.client_id, None).unwrap();
        let now = &store.outbox().unwrap()[0];
        assert_eq!((now.attempts, now.last_error.as_deref()), (3, None));
        // Unknown ids are ignored.
        store.note_attempt("gone", Some("x")).unwrap();
    }

    #[test]
    fn outbox_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.db");
        let (a, b) = {
            let store = LocalStore::open(&path).unwrap();
            let a = store
                .enqueue(&Draft::text(1, "before the crash"), 10)
                .unwrap();
            let b = store.enqueue(&Draft::text(2, "and this"), 11).unwrap();
            store.note_attempt(&a.client_id, Some("offline")).unwrap();
            (a, b)
        };
        let store = LocalStore::open(&path).unwrap();
        let outbox = store.outbox().unwrap();
        assert_eq!(
            outbox,
            vec![
                Outgoing {
                    attempts: 1,
                    last_error: Some("offline".to_owned()),
                    ..a.clone()
                },
                b.clone()
            ]
        );
        assert!(store.remove_outgoing(&a.client_id).unwrap());
        drop(store);
        let store = LocalStore::open(&path).unwrap();
        assert_eq!(store.outbox().unwrap(), vec![b]);
    }
}
