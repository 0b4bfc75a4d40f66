//! The certificates the user pinned: one per server URL, by its SHA-256 fingerprint.

use std::collections::HashMap;

use super::{LocalError, LocalStore};

impl LocalStore {
    /// Every pinned certificate: server URL → fingerprint.
    pub fn trusted_certificates(&self) -> Result<HashMap<String, String>, LocalError> {
        self.run(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT server, fingerprint FROM trusted_certificates")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Pins `fingerprint` for `server`, in place of the one pinned before, if any.
    pub fn trust_certificate(&self, server: &str, fingerprint: &str) -> Result<(), LocalError> {
        self.run(|conn| {
            conn.prepare_cached(
                "INSERT INTO trusted_certificates (server, fingerprint) VALUES (?1, ?2)
                 ON CONFLICT (server) DO UPDATE SET fingerprint = excluded.fingerprint",
            )?
            .execute([server, fingerprint])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_kept_per_server_and_replaced() {
        let store = LocalStore::open_in_memory().unwrap();
        assert!(store.trusted_certificates().unwrap().is_empty());
        store.trust_certificate("https://a.example", "AA").unwrap();
        store.trust_certificate("https://b.example", "BB").unwrap();
        store.trust_certificate("https://a.example", "CC").unwrap();
        let pins = store.trusted_certificates().unwrap();
        assert_eq!(pins.len(), 2);
        assert_eq!(pins["https://a.example"], "CC");
        assert_eq!(pins["https://b.example"], "BB");
    }
}
