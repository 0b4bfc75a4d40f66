//! The protocol in TypeScript, for the web UI, generated from the types themselves (ts-rs reads
//! their serde attributes, so the declarations follow the JSON they produce). Ids and times are
//! `number`: every id and millisecond count the protocol carries is far below 2^53.
//!
//! The desktop shell writes its own contract the same way, with [`declare`] and [`keep`].

use std::path::Path;

use ts_rs::{Config, TS};

use crate::v1::*;

/// Where [`declarations`] is kept in the repository, from its root.
pub const PATH: &str = "ui/src/generated/protocol.ts";

/// The environment variable that makes [`keep`] write the file instead of comparing.
pub const BLESS: &str = "TIDINGS_BLESS";

/// How every generated module declares its types.
pub fn config() -> Config {
    Config::new().with_large_int("number")
}

/// Every type of the protocol, as one TypeScript module.
pub fn declarations() -> String {
    let cfg = config();
    let mut out = header(
        "`crates/proto`",
        "tidings_proto::typescript",
        "-p tidings-proto --test typescript",
    );
    macro_rules! declare {
        ($($ty:ty),* $(,)?) => { $( declare::<$ty>(&cfg, &mut out); )* };
    }
    declare!(
        // The model.
        UserRef,
        Role,
        RoomKind,
        Room,
        RoomState,
        Message,
        Reaction,
        Quote,
        HistoryPage,
        PresenceStatus,
        Attachment,
        ImageSize,
        // Search.
        SearchResults,
        SearchHit,
        Fragment,
        // Errors.
        ErrorCode,
        ErrorBody,
        // The HTTP API's bodies.
        LoginRequest,
        RegisterRequest,
        LoginResponse,
        SessionInfo,
        Me,
        Revoked,
        CreateRoom,
        OpenDm,
        SendMessage,
        EditMessage,
        ReadMarker,
        Invite,
        // Administration.
        AdminOverview,
        ServerStatus,
        TransportConnections,
        AdminMember,
        MemberAction,
        ManageMember,
        MemberManaged,
        CreateInvite,
        AdminInvite,
        CreatedInvite,
        AuditAction,
        AuditEntry,
        // The chat channel.
        ClientFrame,
        ServerFrame,
        Hello,
        // The feed.
        SessionState,
        SessionStatus,
        LockReason,
        Lock,
        MessageAlert,
        Retract,
        Reset,
        // The HTTP transports.
        Batch,
        TransportKind,
        Transports,
    );
    out
}

/// The first lines of a generated module: where it comes from (`sources`, as it reads in a
/// sentence) and how to regenerate it.
pub fn header(sources: &str, generator: &str, test: &str) -> String {
    format!(
        "// Generated from the Rust types of {sources} ({generator}). Do not edit:\n\
         // regenerate with `{BLESS}=1 cargo test {test}`.\n"
    )
}

/// Appends `T`'s declaration, with its documentation, as an export.
pub fn declare<T: TS>(cfg: &Config, out: &mut String) {
    out.push('\n');
    if let Some(docs) = T::docs() {
        out.push_str(&docs);
    }
    out.push_str("export ");
    out.push_str(&T::decl(cfg));
    out.push('\n');
}

/// Compares a generated module with the file kept at `path`; with [`BLESS`] set, writes it first.
/// The error says which file differs and how to regenerate it.
pub fn keep(path: &Path, generated: &str, test: &str) -> Result<(), String> {
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(path, generated).map_err(|err| format!("{}: {err}", path.display()))?;
    }
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    if kept == generated {
        Ok(())
    } else {
        Err(format!(
            "{} is not what the Rust types generate; regenerate it with `{BLESS}=1 cargo test {test}`",
            path.display()
        ))
    }
}
