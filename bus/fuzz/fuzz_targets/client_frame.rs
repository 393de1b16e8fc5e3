//! Any text a client can send in a frame: the parser answers a message or
//! a protocol error, and never panics, whatever the bytes.

#![no_main]

use bus::protocol::{Limits, parse_client_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    // The default limits, and tight ones, so that every limit's edge is
    // reached by short inputs too.
    let _ = parse_client_message(text, &Limits::default());
    let tight = Limits {
        max_frame_bytes: 64,
        max_events_per_message: 2,
        max_keys_per_request: 2,
        max_queries_per_connection: 1,
        max_lookups_per_connection: 1,
    };
    let _ = parse_client_message(text, &tight);
});
