//! Table tickets: arbitrary text and arbitrary bytes through the decoders.
//! Invariants: no panic; a ticket that decodes prints to a text that decodes to the same ticket,
//! and re-encodes to bytes that decode to it again; nothing longer than the maximum is read.
#![no_main]

use bitcraps_transport_core::{Ticket, TICKET_PREFIX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Ticket::from_bytes(data) {
        assert_eq!(Ticket::from_bytes(&t.to_bytes()).as_ref(), Ok(&t));
        assert_eq!(t.to_string().parse::<Ticket>().as_ref(), Ok(&t));
        assert!(!t.routes().is_empty() && t.routes().len() <= 16);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for candidate in [text.to_string(), format!("{TICKET_PREFIX}{text}")] {
            if let Ok(t) = candidate.parse::<Ticket>() {
                assert_eq!(t.to_string().parse::<Ticket>().as_ref(), Ok(&t));
            }
        }
    }
});
