//! The 1-RTT (Noise IK) handshake on hostile bytes. From one input:
//! - a responder given the input as IK message 1 never panics and accepts only a message of the
//!   exact length with an IK handshake id; the fallback check accepts only `[0xFE]`;
//! - a genuine IK exchange whose message 1 is XOR-ed with the first half of the input (as a
//!   mask): the responder accepts it if and only if the mask changed nothing, and then proves
//!   the initiator's PeerId;
//! - the same for message 2 at the initiator with the second half, and then the records of the
//!   two sides open at each other.
#![no_main]

use bitcraps_transport_core::secure::handshake_ik::{
    self, is_fallback, is_ik, IkInitiator, IK_MSG1_LEN,
};
use bitcraps_transport_core::secure::record::KIND_ACCEPT;
use bitcraps_transport_core::secure::CipherSuite;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[path = "common/handshake.rs"]
mod common;
use common::{initiator, masked, responder};

fuzz_target!(|data: &[u8]| {
    if handshake_ik::respond(responder(), &CipherSuite::ALL, data).is_ok() {
        assert_eq!(data.len(), IK_MSG1_LEN);
        assert!(is_ik(data[0]));
    }
    if let Ok(true) = is_fallback(data) {
        assert_eq!(data, [0xFE]);
    }

    let suite = if data.first().is_some_and(|b| b & 1 == 1) {
        CipherSuite::ChaChaPolyBlake2s
    } else {
        CipherSuite::AesGcmSha256
    };
    let (mask1, mask2) = data.split_at(data.len() / 2);
    let (i, m1) = IkInitiator::start_with_fixed_ephemeral(
        initiator(),
        suite,
        responder().peer_id(),
        responder().noise_public(),
        &[0x31; 32],
    )
    .expect("start");
    let m1_changed = masked(&m1, mask1) != m1;
    let mut r = match handshake_ik::respond_with_fixed_ephemeral(
        responder(),
        &CipherSuite::ALL,
        &masked(&m1, mask1),
        &[0x32; 32],
    ) {
        Ok(r) => {
            assert!(!m1_changed, "a modified message 1 was accepted");
            assert_eq!(r.peer, initiator().peer_id());
            assert_eq!(r.suite, suite);
            r
        }
        Err(_) => {
            assert!(m1_changed, "a genuine message 1 was refused");
            return;
        }
    };
    let m2_changed = masked(&r.msg2, mask2) != r.msg2;
    match i.read_message2(&masked(&r.msg2, mask2)) {
        Ok((_, mut opener)) => {
            assert!(!m2_changed, "a modified message 2 was accepted");
            let mut frame = BytesMut::new();
            r.sealer.seal(KIND_ACCEPT, &[], &mut frame).expect("seal");
            let record = opener.open(frame.split_off(4)).expect("keys agree");
            assert_eq!(record.kind, KIND_ACCEPT);
        }
        Err(_) => assert!(m2_changed, "a genuine message 2 was refused"),
    }
});
