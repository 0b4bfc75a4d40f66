//! Notification settings: a level per room, the default for the others, and do-not-disturb.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use tidings_proto::v1::{RoomId, TransportKind};

use super::{LocalError, LocalStore};

/// Which messages of a room notify the user. One type for the policy that applies it and the
/// store that keeps it: defined by the notification policy, stored here as TEXT.
pub use crate::notify::NotifyLevel;

/// The level as stored.
fn level_text(level: NotifyLevel) -> &'static str {
    match level {
        NotifyLevel::All => "all",
        NotifyLevel::Mentions => "mentions",
        NotifyLevel::Nothing => "nothing",
    }
}

impl ToSql for NotifyLevel {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(level_text(*self)))
    }
}

impl FromSql for NotifyLevel {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "all" => Ok(NotifyLevel::All),
            "mentions" => Ok(NotifyLevel::Mentions),
            "nothing" => Ok(NotifyLevel::Nothing),
            other => Err(FromSqlError::Other(
                format!("unknown notify level {other:?}").into(),
            )),
        }
    }
}

impl LocalStore {
    /// The room's notification level: its own if set, else the default.
    pub fn notify_level(&self, room: RoomId) -> Result<NotifyLevel, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT coalesce((SELECT level FROM notify_levels WHERE room_id = ?1),
                                 default_notify)
                 FROM state",
            )?;
            Ok(stmt.query_row([room], |row| row.get(0))?)
        })
    }

    /// Sets the room's own level; `None` makes it follow the default again.
    pub fn set_notify_level(
        &self,
        room: RoomId,
        level: Option<NotifyLevel>,
    ) -> Result<(), LocalError> {
        self.run(|conn| {
            match level {
                Some(level) => conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO notify_levels (room_id, level) VALUES (?1, ?2)",
                    )?
                    .execute((room, level))?,
                None => conn
                    .prepare_cached("DELETE FROM notify_levels WHERE room_id = ?1")?
                    .execute([room])?,
            };
            Ok(())
        })
    }

    /// The level of rooms without their own: `All` unless set.
    pub fn default_notify_level(&self) -> Result<NotifyLevel, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("SELECT default_notify FROM state")?;
            Ok(stmt.query_row([], |row| row.get(0))?)
        })
    }

    /// Sets the level of rooms without their own.
    pub fn set_default_notify_level(&self, level: NotifyLevel) -> Result<(), LocalError> {
        self.run(|conn| {
            conn.prepare_cached("UPDATE state SET default_notify = ?1")?
                .execute([level])?;
            Ok(())
        })
    }

    /// Whether do-not-disturb is on (off unless set).
    pub fn do_not_disturb(&self) -> Result<bool, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("SELECT do_not_disturb FROM state")?;
            Ok(stmt.query_row([], |row| row.get(0))?)
        })
    }

    /// Turns do-not-disturb on or off.
    pub fn set_do_not_disturb(&self, on: bool) -> Result<(), LocalError> {
        self.run(|conn| {
            conn.prepare_cached("UPDATE state SET do_not_disturb = ?1")?
                .execute([on])?;
            Ok(())
        })
    }

    /// The transport the user pinned; `None` for the ladder. A name this build does not know
    /// (written by a newer one) counts as none.
    pub fn transport(&self) -> Result<Option<TransportKind>, LocalError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("SELECT transport FROM state")?;
            let name: Option<String> = stmt.query_row([], |row| row.get(0))?;
            Ok(name.as_deref().and_then(TransportKind::from_name))
        })
    }

    /// Pins a transport, or (`None`) goes back to the ladder.
    pub fn set_transport(&self, kind: Option<TransportKind>) -> Result<(), LocalError> {
        self.run(|conn| {
            conn.prepare_cached("UPDATE state SET transport = ?1")?
                .execute([kind.map(TransportKind::name)])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_transport_is_kept_and_can_be_unpinned() {
        let store = LocalStore::open_in_memory().unwrap();
        assert_eq!(store.transport().unwrap(), None);
        store
            .set_transport(Some(TransportKind::LongPolling))
            .unwrap();
        assert_eq!(store.transport().unwrap(), Some(TransportKind::LongPolling));
        store.set_transport(None).unwrap();
        assert_eq!(store.transport().unwrap(), None);
    }

    #[test]
    fn room_levels_fall_back_to_the_default() {
        let store = LocalStore::open_in_memory().unwrap();
        assert_eq!(store.default_notify_level().unwrap(), NotifyLevel::All);
        assert_eq!(store.notify_level(1).unwrap(), NotifyLevel::All);

        store
            .set_notify_level(1, Some(NotifyLevel::Nothing))
            .unwrap();
        assert_eq!(store.notify_level(1).unwrap(), NotifyLevel::Nothing);
        assert_eq!(store.notify_level(2).unwrap(), NotifyLevel::All);

        store
            .set_default_notify_level(NotifyLevel::Mentions)
            .unwrap();
        assert_eq!(store.default_notify_level().unwrap(), NotifyLevel::Mentions);
        assert_eq!(store.notify_level(1).unwrap(), NotifyLevel::Nothing);
        assert_eq!(store.notify_level(2).unwrap(), NotifyLevel::Mentions);

        store.set_notify_level(1, Some(NotifyLevel::All)).unwrap();
        assert_eq!(store.notify_level(1).unwrap(), NotifyLevel::All);
        store.set_notify_level(1, None).unwrap();
        assert_eq!(store.notify_level(1).unwrap(), NotifyLevel::Mentions);
        // Following the default when already following it is fine.
        store.set_notify_level(1, None).unwrap();
        assert_eq!(store.notify_level(1).unwrap(), NotifyLevel::Mentions);
    }

    #[test]
    fn do_not_disturb_toggles() {
        let store = LocalStore::open_in_memory().unwrap();
        assert!(!store.do_not_disturb().unwrap());
        store.set_do_not_disturb(true).unwrap();
        assert!(store.do_not_disturb().unwrap());
        store.set_do_not_disturb(false).unwrap();
        assert!(!store.do_not_disturb().unwrap());
    }

    #[test]
    fn levels_serialize_in_snake_case() {
        for (level, text) in [
            (NotifyLevel::All, "all"),
            (NotifyLevel::Mentions, "mentions"),
            (NotifyLevel::Nothing, "nothing"),
        ] {
            assert_eq!(
                serde_json::to_string(&level).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(level_text(level), text);
        }
    }

    #[test]
    fn an_unknown_level_on_disk_is_an_error() {
        let store = LocalStore::open_in_memory().unwrap();
        {
            let conn = store.conn.lock().unwrap();
            conn.execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 INSERT INTO notify_levels (room_id, level) VALUES (1, 'loud');",
            )
            .unwrap();
        }
        assert!(matches!(store.notify_level(1), Err(LocalError::Sqlite(_))));
    }
}
