//! The server's decoder of client frames: any text is a frame or a clear error, never a panic;
//! a frame it accepts encodes back to one it decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_proto::v1::decode_client_frame;

fuzz_target!(|text: &str| {
    if let Ok(frame) = decode_client_frame(text) {
        let again = serde_json::to_string(&frame).expect("an accepted frame encodes");
        assert_eq!(decode_client_frame(&again).ok(), Some(frame));
    }
});
