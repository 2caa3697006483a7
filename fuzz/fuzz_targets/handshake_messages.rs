//! Handshake machines on hostile bytes: a responder given an arbitrary message 1 and an
//! initiator given an arbitrary message 2 never panic, and accept only messages of the exact
//! protocol lengths.
#![no_main]

use std::sync::OnceLock;

use bitcraps_transport_core::secure::handshake::{
    InitiatorHandshake, ResponderHandshake, MSG1_LEN, MSG2_LEN,
};
use bitcraps_transport_core::secure::{CipherSuite, LocalIdentity};
use bitcraps_transport_core::Keypair;
use libfuzzer_sys::fuzz_target;

fn identity() -> &'static LocalIdentity {
    static ID: OnceLock<std::sync::Arc<LocalIdentity>> = OnceLock::new();
    ID.get_or_init(|| LocalIdentity::with_noise_key(Keypair::from_secret_bytes([7; 32]), [9; 32]))
}

fuzz_target!(|data: &[u8]| {
    if let Ok((_, msg2)) = ResponderHandshake::respond(identity(), &CipherSuite::ALL, data) {
        assert_eq!(data.len(), MSG1_LEN);
        assert_eq!(msg2.len(), MSG2_LEN);
    }
    let (mut initiator, _) =
        InitiatorHandshake::start(identity(), CipherSuite::default(), None).expect("start");
    if initiator.read_message2(data).is_ok() {
        assert_eq!(data.len(), MSG2_LEN);
    }
});
