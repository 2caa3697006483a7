//! Identity payload parser: the first 32 bytes are the Noise static key it must be bound to, the
//! rest is the payload. Invariants: it accepts only 97-byte version-1 payloads, and an accepted
//! payload's PeerId is exactly the key bytes it carries.
#![no_main]

use bitcraps_transport_core::secure::payload::{decode_identity_payload, IDENTITY_PAYLOAD_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 32 {
        return;
    }
    let mut noise_static = [0u8; 32];
    noise_static.copy_from_slice(&data[..32]);
    let payload = &data[32..];
    if let Ok(peer) = decode_identity_payload(payload, &noise_static) {
        assert_eq!(payload.len(), IDENTITY_PAYLOAD_LEN);
        assert_eq!(payload[0], 1);
        assert_eq!(&peer.as_bytes()[..], &payload[1..33]);
    }
});
