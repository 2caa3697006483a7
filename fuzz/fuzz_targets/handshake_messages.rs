//! Handshake machines on hostile bytes. Three parts, all from one input:
//! - a responder given the input as message 1 and an initiator given it as message 2 never
//!   panic, and accept only messages of the exact protocol lengths;
//! - a genuine handshake whose message 2 is XOR-ed with the input (as a mask): the initiator
//!   accepts it if and only if the mask changed nothing, and then it proves the responder's
//!   PeerId (every byte of message 2 is authenticated or bound by the DH);
//! - the same for message 3 at the responder, which must then prove the initiator's PeerId.
#![no_main]

use bitcraps_transport_core::secure::handshake::{
    InitiatorHandshake, ResponderHandshake, MSG1_LEN, MSG2_LEN,
};
use bitcraps_transport_core::secure::CipherSuite;
use libfuzzer_sys::fuzz_target;

#[path = "common/handshake.rs"]
mod common;
use common::{initiator, masked, responder};

fuzz_target!(|data: &[u8]| {
    if let Ok((_, msg2)) = ResponderHandshake::respond(initiator(), &CipherSuite::ALL, data) {
        assert_eq!(data.len(), MSG1_LEN);
        assert_eq!(msg2.len(), MSG2_LEN);
    }
    let (mut hostile, _) =
        InitiatorHandshake::start(initiator(), CipherSuite::default(), None).expect("start");
    if hostile.read_message2(data).is_ok() {
        assert_eq!(data.len(), MSG2_LEN);
    }

    // A genuine exchange with the input as a mask over message 2, then message 3.
    let suite = if data.first().is_some_and(|b| b & 1 == 1) {
        CipherSuite::ChaChaPolyBlake2s
    } else {
        CipherSuite::AesGcmSha256
    };
    let (mask2, mask3) = data.split_at(data.len() / 2);
    let (mut i, m1) = InitiatorHandshake::start_with_fixed_ephemeral(
        initiator(),
        suite,
        Some(responder().peer_id()),
        &[0x21; 32],
    )
    .expect("start");
    let (r, m2) = ResponderHandshake::respond_with_fixed_ephemeral(
        responder(),
        &CipherSuite::ALL,
        &m1,
        &[0x22; 32],
    )
    .expect("respond");
    let m2_changed = masked(&m2, mask2) != m2;
    match i.read_message2(&masked(&m2, mask2)) {
        Ok(peer) => {
            assert!(!m2_changed, "a modified message 2 was accepted");
            assert_eq!(peer, responder().peer_id());
        }
        Err(_) => {
            assert!(m2_changed, "a genuine message 2 was refused");
            return;
        }
    }
    let (m3, ..) = i.write_message3().expect("message 3");
    let m3_changed = masked(&m3, mask3) != m3;
    match r.read_message3(&masked(&m3, mask3)) {
        Ok((peer, ..)) => {
            assert!(!m3_changed, "a modified message 3 was accepted");
            assert_eq!(peer, initiator().peer_id());
        }
        Err(_) => assert!(m3_changed, "a genuine message 3 was refused"),
    }
});
