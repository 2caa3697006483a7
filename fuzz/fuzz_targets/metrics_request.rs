//! The metrics endpoint's request head parser (`bitcraps_coordinator::metrics::http`): arbitrary
//! bytes as a request head. Invariants: no panic; a head over `MAX_HEAD` is `TooLarge`; only a
//! `GET /metrics` line is `Metrics`; `find_end` points at a blank line inside the input.
#![no_main]

use bitcraps_coordinator::metrics::http::{find_end, parse, Request, MAX_HEAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let request = parse(data);
    if data.len() > MAX_HEAD {
        assert_eq!(request, Request::TooLarge);
    }
    if request == Request::Metrics {
        assert!(data.starts_with(b"GET /metrics"));
    }
    if let Some(end) = find_end(data) {
        let rest = &data[end..];
        assert!(rest.starts_with(b"\r\n\r\n") || rest.starts_with(b"\n\n"));
        // The head before the blank line parses as the whole input does when that is text
        // within the limit (the first line decides).
        if data.len() <= MAX_HEAD && std::str::from_utf8(data).is_ok() {
            assert_eq!(parse(&data[..end]), request);
        }
    }
});
