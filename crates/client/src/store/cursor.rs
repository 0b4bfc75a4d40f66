//! Where the client resumes: the chat channel's `sync` cursor and the feed's `Last-Event-ID`.

use tidings_proto::v1::MessageId;

use super::{LocalError, LocalStore};

impl LocalStore {
    /// Where `sync` resumes (0 at first): every message of the user's rooms up to this id has
    /// been received. It is not the newest cached message — a history page of one room can be
    /// far ahead of what other rooms have received — and it does not move back when cached
    /// messages are deleted with their room.
    pub fn cursor(&self) -> Result<MessageId, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("SELECT cursor FROM state")?;
            Ok(stmt.query_row([], |row| row.get(0))?)
        })
    }

    /// Records that everything up to `id` has been received, if that is ahead of the recorded
    /// cursor; the cursor only moves forward.
    pub fn set_cursor(&self, id: MessageId) -> Result<(), LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("UPDATE state SET cursor = max(cursor, ?1)")?;
            stmt.execute([id])?;
            Ok(())
        })
    }

    /// The SSE feed's `Last-Event-ID` (`None`: never connected).
    pub fn feed_cursor(&self) -> Result<Option<String>, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("SELECT feed_cursor FROM state")?;
            Ok(stmt.query_row([], |row| row.get(0))?)
        })
    }

    /// Records the feed's `Last-Event-ID`. It is opaque to the client, so it is stored as given.
    pub fn set_feed_cursor(&self, id: &str) -> Result<(), LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("UPDATE state SET feed_cursor = ?1")?;
            stmt.execute([id])?;
            Ok(())
        })
    }

    /// Starts the feed's cursor at `id` if the feed has none yet: a client's first sync says
    /// from where the feed owes it notifications, so a message that lands between that sync and
    /// the feed's first connection is not missed.
    pub fn start_feed_cursor(&self, id: MessageId) -> Result<(), LocalError> {
        self.run(|conn| {
            let mut stmt =
                conn.prepare_cached("UPDATE state SET feed_cursor = ?1 WHERE feed_cursor IS NULL")?;
            stmt.execute([id.to_string()])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixture::{group, message};

    #[test]
    fn cursor_starts_at_zero_and_only_moves_forward() {
        let store = LocalStore::open_in_memory().unwrap();
        assert_eq!(store.cursor().unwrap(), 0);
        store.set_cursor(10).unwrap();
        assert_eq!(store.cursor().unwrap(), 10);
        store.set_cursor(3).unwrap();
        assert_eq!(store.cursor().unwrap(), 10);
    }

    #[test]
    fn cursor_survives_the_deletion_of_cached_messages() {
        let store = LocalStore::open_in_memory().unwrap();
        store.upsert_room(&group(1, "ops")).unwrap();
        store.save_messages(&[message(7, 1, 2, "a")], 1).unwrap();
        store.set_cursor(7).unwrap();
        store.set_cursor(5).unwrap();
        assert_eq!(store.cursor().unwrap(), 7);

        // The room leaves the list and its messages go; the cursor stays.
        store.replace_rooms(&[]).unwrap();
        assert!(store.history(1, None, 10).unwrap().is_empty());
        assert_eq!(store.cursor().unwrap(), 7);
    }

    #[test]
    fn feed_cursor_is_stored_as_given() {
        let store = LocalStore::open_in_memory().unwrap();
        assert_eq!(store.feed_cursor().unwrap(), None);
        store.set_feed_cursor("17").unwrap();
        assert_eq!(store.feed_cursor().unwrap().as_deref(), Some("17"));
        store.set_feed_cursor("16:reset").unwrap();
        assert_eq!(store.feed_cursor().unwrap().as_deref(), Some("16:reset"));
    }

    #[test]
    fn the_first_sync_starts_the_feed_cursor_and_only_the_first() {
        let store = LocalStore::open_in_memory().unwrap();
        store.start_feed_cursor(4).unwrap();
        assert_eq!(store.feed_cursor().unwrap().as_deref(), Some("4"));
        store.set_feed_cursor("9").unwrap();
        store.start_feed_cursor(6).unwrap();
        assert_eq!(store.feed_cursor().unwrap().as_deref(), Some("9"));
    }
}
