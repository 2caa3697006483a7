//! The pre-handshake refusal decoder (`docs/protocol.md`, section 3) on hostile bytes.
//! Invariants: it never panics; it accepts exactly the 6-byte payloads with the marker `0xFF`
//! and a known limit id; an accepted payload re-encodes to the same bytes (one encoding per
//! refusal, so nothing else can pass for one); a frame of message 2's length is never one.
#![no_main]

use bitcraps_transport_core::refusal::{
    decode_refusal, encode_refusal, is_refusal_len, REFUSAL_LEN, REFUSAL_MARKER,
};
use bitcraps_transport_core::secure::handshake::MSG2_LEN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(!is_refusal_len(MSG2_LEN));
    match decode_refusal(data) {
        Ok(rejection) => {
            assert_eq!(data.len(), REFUSAL_LEN);
            assert_eq!(data[0], REFUSAL_MARKER);
            assert!((1..=5).contains(&data[1]));
            let frame = encode_refusal(&rejection);
            assert_eq!(&frame[4..], data, "the refusal does not re-encode to its bytes");
            assert_eq!(u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]), 6);
        }
        Err(_) => assert!(
            data.len() != REFUSAL_LEN || data[0] != REFUSAL_MARKER || !(1..=5).contains(&data[1]),
            "a well-formed refusal was refused: {data:02x?}"
        ),
    }
});
