//! The UDP datagram parser on hostile bytes. Invariants: it never panics; an accepted datagram
//! has exactly the length its type fixes (handshakes) or header + counter + at least a kind byte
//! and a tag (sealed ones); HANDSHAKE_1 padding is all zero; the parts it returns are the input's
//! own bytes at the documented offsets.
#![no_main]

use bitcraps_transport_udp::proto::wire::{
    parse, Datagram, COUNTER_LEN, HANDSHAKE_1_LEN, HANDSHAKE_2_LEN, HANDSHAKE_3_LEN, HEADER_LEN,
    SEALED_OVERHEAD,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(datagram) = parse(data) else { return };
    match datagram {
        Datagram::Handshake1 { msg1, .. } => {
            assert_eq!(data.len(), HANDSHAKE_1_LEN);
            assert_eq!(msg1, &data[HEADER_LEN..HEADER_LEN + msg1.len()]);
            assert!(data[HEADER_LEN + msg1.len()..].iter().all(|&b| b == 0));
        }
        Datagram::Handshake2 { msg2, .. } => {
            assert_eq!(data.len(), HANDSHAKE_2_LEN);
            assert_eq!(msg2, &data[HEADER_LEN + 4..]);
        }
        Datagram::Handshake3 { msg3, .. } => {
            assert_eq!(data.len(), HANDSHAKE_3_LEN);
            assert_eq!(msg3, &data[HEADER_LEN..]);
        }
        Datagram::Confirm(s) | Datagram::Data(s) => {
            assert!(data.len() >= SEALED_OVERHEAD);
            assert_eq!(s.ciphertext, &data[HEADER_LEN + COUNTER_LEN..]);
            let counter = u64::from_be_bytes(data[HEADER_LEN..HEADER_LEN + 8].try_into().unwrap());
            assert_eq!(s.counter, counter);
        }
    }
});
