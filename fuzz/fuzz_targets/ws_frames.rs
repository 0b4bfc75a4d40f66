//! The chat WebSocket's frame reader: any bytes from a client are messages, "more please", or a
//! refusal (a close code), never a panic; and how the bytes are cut into reads changes nothing —
//! the first byte of the input sets the size of the pieces they arrive in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_server::fuzzing::{FrameReader, Incoming, Refused};

/// Small, so frames and messages over the limit are found too.
const LIMIT: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, data)) = data.split_first() else {
        return;
    };
    let whole = read(std::iter::once(data));
    let cut = read(data.chunks(usize::from(piece).max(1)));
    assert_eq!(whole, cut);
});

/// Everything the reader makes of `pieces`, up to its first refusal.
fn read<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<Incoming>, Option<Refused>) {
    let mut reader = FrameReader::default();
    let mut got = Vec::new();
    for piece in pieces {
        reader.push(piece);
        loop {
            match reader.next(LIMIT) {
                Ok(Some(incoming)) => got.push(incoming),
                Ok(None) => break,
                Err(refused) => return (got, Some(refused)),
            }
        }
    }
    (got, None)
}
