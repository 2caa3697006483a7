//! The QUIC certificate parser on hostile DER. Invariants: it never panics, and whatever it
//! accepts names a PeerId whose 32 key bytes appear verbatim in the certificate (the parser
//! never invents a key).
#![no_main]

use bitcraps_transport_quic::peer_id_from_certificate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(peer) = peer_id_from_certificate(data) {
        let key = peer.as_bytes();
        assert!(data.windows(32).any(|w| w == key));
    }
});
