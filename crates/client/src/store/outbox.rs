//! The outbox: messages written but not yet acknowledged by the server.
//!
//! A message is stored here (durably: `synchronous=FULL`) before anything is sent, and removed
//! once the server's ack names its `client_id`. Resending after a crash or a reconnect is safe
//! because the server deduplicates by `client_id`.

use rusqlite::Row;
use tidings_proto::v1::{MessageId, Millis, RoomId};

use super::{LocalError, LocalStore};

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
    })
}

/// A fresh idempotency key: 128 random bits, as 32 lowercase hex digits.
fn new_client_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl LocalStore {
    /// Writes a message to the outbox under a new random `client_id`; it is on disk when this
    /// returns.
    pub fn enqueue(
        &self,
        room: RoomId,
        body: &str,
        reply_to: Option<MessageId>,
        now: Millis,
    ) -> Result<Outgoing, LocalError> {
        let outgoing = Outgoing {
            client_id: new_client_id(),
            room,
            body: body.to_owned(),
            created_at: now,
            attempts: 0,
            last_error: None,
            reply_to,
        };
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO outbox (client_id, room_id, body, created_at, reply_to)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            stmt.execute((&outgoing.client_id, room, body, now, reply_to))?;
            Ok(())
        })?;
        Ok(outgoing)
    }

    /// Every message waiting to be sent, oldest (first enqueued) first.
    pub fn outbox(&self) -> Result<Vec<Outgoing>, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT client_id, room_id, body, created_at, attempts, last_error, reply_to
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
        let a = store.enqueue(1, "a", None, 1).unwrap();
        let b = store.enqueue(1, "b", None, 1).unwrap();
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
    fn outbox_is_oldest_first_and_remove_takes_one() {
        let store = LocalStore::open_in_memory().unwrap();
        assert!(store.outbox().unwrap().is_empty());
        let first = store.enqueue(1, "first", None, 300).unwrap();
        // Enqueue order wins over timestamps, which a clock change can reorder.
        let second = store.enqueue(2, "second", None, 100).unwrap();
        let third = store.enqueue(1, "third", None, 200).unwrap();
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
        let out = store.enqueue(1, "hi", None, 5).unwrap();
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
            let a = store.enqueue(1, "before the crash", None, 10).unwrap();
            let b = store.enqueue(2, "and this", None, 11).unwrap();
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
