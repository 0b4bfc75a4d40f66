//! What the client decodes from the server: chat frames and the feed's event payloads. Any text
//! is a value or an error, never a panic; a value round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tidings_proto::v1::{Lock, MessageAlert, ServerFrame, SessionStatus};

fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) {
    if let Ok(value) = serde_json::from_str::<T>(text) {
        let again = serde_json::to_string(&value).expect("a decoded value encodes");
        assert_eq!(serde_json::from_str::<T>(&again).ok(), Some(value));
    }
}

fuzz_target!(|text: &str| {
    round_trips::<ServerFrame>(text);
    round_trips::<Lock>(text);
    round_trips::<MessageAlert>(text);
    round_trips::<SessionStatus>(text);
});
