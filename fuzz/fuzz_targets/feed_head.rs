//! The feed's own request-head parser (the listener's `direct` path): any bytes are a request,
//! "more please", or a 400/431, never a panic; a head it accepts parses the same with anything
//! appended after it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_server::fuzzing::parse_head;

fuzz_target!(|data: &[u8]| {
    match parse_head(data) {
        Ok(Some(request)) => {
            let mut longer = data.to_vec();
            longer.extend_from_slice(b"trailing body bytes");
            if let Ok(Some(again)) = parse_head(&longer) {
                assert_eq!(again.uri(), request.uri());
                assert_eq!(again.headers(), request.headers());
            }
        }
        Ok(None) => {}
        Err(status) => assert!(status == 400 || status == 431, "{status}"),
    }
});
