//! The Tidings wire protocol: every JSON shape that crosses the network, defined once.
//!
//! The server, the client core and the tests all speak through these types; nothing else derives
//! `Serialize`/`Deserialize` for the wire. Storage rows and UI view-models convert to and from them
//! explicitly.
//!
//! The protocol is versioned by module. [`v1`] is the only version; it is negotiated on the
//! WebSocket as the subprotocol [`v1::SUBPROTOCOL`]. A breaking change adds `v2` beside it.
//!
//! - [`v1::chat`]: the WebSocket chat channel (`/api/ws`): [`v1::ClientFrame`] and
//!   [`v1::ServerFrame`], and the close codes in [`v1::close`].
//! - [`v1::feed`]: the Server-Sent Events feed (`/api/events`): session status, lock, new-message
//!   alerts, reset.
//! - [`v1::api`]: the bodies of the HTTP API.
//! - [`v1::error`]: error codes, shared by all three. Clients match codes, never messages.
//!
//! With the `typescript` feature, [`typescript::declarations`] writes every one of these types
//! as TypeScript (with ts-rs), for the web UI: `ui/src/generated/protocol.ts` is its output, and
//! a test fails when the two differ.

#[cfg(feature = "typescript")]
pub mod typescript;
pub mod v1;

/// How a server's TLS certificate is shown to people, to compare and to pin: the SHA-256 of its
/// DER bytes in upper-case hex, a colon between bytes — what `openssl x509 -noout -fingerprint
/// -sha256` prints after `=`. The server logs it; a client shows it before pinning.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(der);
    let mut shown = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            shown.push(':');
        }
        shown.push_str(&format!("{byte:02X}"));
    }
    shown
}

#[cfg(test)]
mod fingerprint_tests {
    #[test]
    fn a_fingerprint_is_the_sha256_in_colon_separated_hex() {
        // SHA-256 of the empty input, a known value.
        let shown = super::certificate_fingerprint(b"");
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert!(shown.starts_with("E3:B0:C4:42:98:FC:1C:14"));
        assert!(shown.ends_with("78:52:B8:55"));
    }
}
