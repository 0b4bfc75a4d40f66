//! The protocol in TypeScript, for the web UI, generated from the types themselves (ts-rs reads
//! their serde attributes, so the declarations follow the JSON they produce). Ids and times are
//! `number`: every id and millisecond count the protocol carries is far below 2^53.

use ts_rs::{Config, TS};

use crate::v1::*;

/// Where [`declarations`] is kept in the repository, from its root.
pub const PATH: &str = "ui/src/generated/protocol.ts";

/// Every type of the protocol, as one TypeScript module.
pub fn declarations() -> String {
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types of `crates/proto` (tidings_proto::typescript). Do not edit:\n\
         // regenerate with `TIDINGS_BLESS=1 cargo test -p tidings-proto --test typescript`.\n",
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
        HistoryPage,
        PresenceStatus,
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
        ReadMarker,
        Invite,
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
        Reset,
        // The HTTP transports.
        Batch,
        TransportKind,
        Transports,
    );
    out
}

fn declare<T: TS>(cfg: &Config, out: &mut String) {
    out.push('\n');
    if let Some(docs) = T::docs() {
        out.push_str(&docs);
    }
    out.push_str("export ");
    out.push_str(&T::decl(cfg));
    out.push('\n');
}
