//! The desktop contract in TypeScript: what the commands answer and the events carry, generated
//! from the shell's and the client core's types into `ui/src/generated/desktop.ts` (the
//! protocol's own types come from `protocol.ts` beside it). A test fails when the kept file is
//! not what the types generate; the UI's type check then shows what a change breaks.

use std::path::PathBuf;

use tidings_client::notify::NotifyLevel;
use tidings_client::{ConnectionState, LockCause};
use tidings_proto::typescript::{config, declare, header, keep};

use crate::commands::{AccountView, AppStatus, Hosted, InviteCode, Pending, Queued};
use crate::error::CommandError;
use crate::host::HostInfo;
use crate::view::{
    LockedEvent, OpenRoomEvent, PresenceEvent, ReadEvent, SendFailedEvent, SentEvent, TypingEvent,
    UiEvent, UntrustedEvent, UploadProgressEvent,
};

const PATH: &str = "ui/src/generated/desktop.ts";
const TEST: &str = "-p tidings-desktop --lib contract";

/// The protocol's types the contract refers to.
const IMPORTS: &str = "import type { Attachment, ErrorBody, Message, PresenceStatus, RoomState, \
                       SessionStatus, TransportKind, UserRef } from './protocol';\n";

fn declarations() -> String {
    let cfg = config();
    let mut out = header(
        "`src-tauri` and `crates/client`",
        "tidings_desktop::contract",
        TEST,
    );
    out.push('\n');
    out.push_str(IMPORTS);
    macro_rules! declare {
        ($($ty:ty),* $(,)?) => { $( declare::<$ty>(&cfg, &mut out); )* };
    }
    declare!(
        // The client core's.
        ConnectionState,
        LockCause,
        NotifyLevel,
        // What commands answer.
        AccountView,
        AppStatus,
        HostInfo,
        Hosted,
        Queued,
        Pending,
        InviteCode,
        CommandError,
        // What events carry.
        SentEvent,
        SendFailedEvent,
        TypingEvent,
        PresenceEvent,
        ReadEvent,
        LockedEvent,
        OpenRoomEvent,
        UploadProgressEvent,
        UntrustedEvent,
        UiEvent,
    );
    out
}

#[test]
fn the_ui_has_the_desktop_contract_as_generated_from_the_rust_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(PATH);
    let generated = declarations();
    keep(&path, &generated, TEST).unwrap_or_else(|err| panic!("{err}"));
    // An event's name and payload are the variant's, as `view::emit` sends them.
    assert!(
        generated.contains("{ \"name\": \"open_room\", \"payload\": OpenRoomEvent }"),
        "{generated}"
    );
}
