//! Identity payload parser. Two parts, from one input:
//! - the first 32 bytes are the Noise static key it must be bound to, the rest is the payload:
//!   it accepts only 97-byte version-1 payloads, and an accepted payload's PeerId is exactly the
//!   key bytes it carries;
//! - a genuine payload XOR-ed with the input (as a mask) and checked against its genuine static
//!   key is accepted if and only if the mask changed nothing (version, key and signature are
//!   all covered), and then names its signer.
#![no_main]

use std::sync::OnceLock;

use bitcraps_transport_core::secure::payload::{
    decode_identity_payload, encode_identity_payload, IDENTITY_PAYLOAD_LEN,
};
use bitcraps_transport_core::{Keypair, PeerId};
use libfuzzer_sys::fuzz_target;

/// The genuine static key the genuine payload is bound to.
const STATIC: [u8; 32] = [0x33; 32];

/// A genuine payload and its signer.
fn genuine() -> &'static (Vec<u8>, PeerId) {
    static GENUINE: OnceLock<(Vec<u8>, PeerId)> = OnceLock::new();
    GENUINE.get_or_init(|| {
        let key = Keypair::from_secret_bytes([1; 32]);
        (encode_identity_payload(&key, &STATIC).to_vec(), key.peer_id())
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() >= 32 {
        let mut noise_static = [0u8; 32];
        noise_static.copy_from_slice(&data[..32]);
        let payload = &data[32..];
        if let Ok(peer) = decode_identity_payload(payload, &noise_static) {
            assert_eq!(payload.len(), IDENTITY_PAYLOAD_LEN);
            assert_eq!(payload[0], 1);
            assert_eq!(&peer.as_bytes()[..], &payload[1..33]);
        }
    }
    let (genuine, signer) = genuine();
    let mut mutated = genuine.clone();
    for (byte, mask) in mutated.iter_mut().zip(data.iter()) {
        *byte ^= mask;
    }
    let changed = mutated[..] != genuine[..];
    match decode_identity_payload(&mutated, &STATIC) {
        Ok(peer) => {
            assert!(!changed, "a modified identity payload was accepted");
            assert_eq!(peer, *signer);
        }
        Err(_) => assert!(changed, "the genuine identity payload was refused"),
    }
});
