//! Drafts: the text typed in a room but not sent, one per room.

use rusqlite::OptionalExtension;
use tidings_proto::v1::RoomId;

use super::{LocalError, LocalStore};

impl LocalStore {
    /// Saves the room's draft, replacing the previous one; an empty `text` removes it.
    pub fn set_draft(&self, room: RoomId, text: &str) -> Result<(), LocalError> {
        self.run(|conn| {
            if text.is_empty() {
                conn.prepare_cached("DELETE FROM drafts WHERE room_id = ?1")?
                    .execute([room])?;
            } else {
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO drafts (room_id, text) VALUES (?1, ?2)",
                )?
                .execute((room, text))?;
            }
            Ok(())
        })
    }

    /// The room's draft, if there is one.
    pub fn draft(&self, room: RoomId) -> Result<Option<String>, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("SELECT text FROM drafts WHERE room_id = ?1")?;
            Ok(stmt.query_row([room], |row| row.get(0)).optional()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_draft_per_room_and_empty_removes() {
        let store = LocalStore::open_in_memory().unwrap();
        assert_eq!(store.draft(1).unwrap(), None);
        store.set_draft(1, "hello").unwrap();
        store.set_draft(2, "other room").unwrap();
        store.set_draft(1, "hello, world").unwrap();
        assert_eq!(store.draft(1).unwrap().as_deref(), Some("hello, world"));
        assert_eq!(store.draft(2).unwrap().as_deref(), Some("other room"));

        store.set_draft(1, "").unwrap();
        assert_eq!(store.draft(1).unwrap(), None);
        assert_eq!(store.draft(2).unwrap().as_deref(), Some("other room"));
        // Removing what is not there is fine.
        store.set_draft(3, "").unwrap();
        assert_eq!(store.draft(3).unwrap(), None);
    }
}
