//! A deterministic test vector of a whole exchange (fixed identities, Noise static and
//! ephemeral keys, session ids): HANDSHAKE_1..3, CONFIRM and one DATA datagram carrying
//! "roll", recorded for `docs/protocol.md`; a change here is a wire-format change.

use std::time::Instant;

use bytes::BytesMut;

use bitcraps_transport_core::policy::ReplayWindow;
use bitcraps_transport_core::secure::handshake::{InitiatorHandshake, ResponderHandshake};
use bitcraps_transport_core::secure::record::KIND_ACCEPT;
use bitcraps_transport_core::secure::{CipherSuite, LocalIdentity};
use bitcraps_transport_core::Keypair;

use super::dial::{DialHandshake, DialStep, RetryTiming};
use super::session::{Event, Session, SessionTiming};
use super::wire::{self, Datagram, TYPE_CONFIRM};

const INITIATOR_ID: u32 = 0x1111_1111;
const RESPONDER_ID: u32 = 0x2222_2222;

struct Vector {
    h1: Vec<u8>,
    h2: Vec<u8>,
    h3: Vec<u8>,
    confirm: Vec<u8>,
    data: Vec<u8>,
    responder: Session,
}

fn exchange() -> Vector {
    let now = Instant::now();
    let a = LocalIdentity::with_noise_key(Keypair::from_secret_bytes([1; 32]), [2; 32]);
    let b = LocalIdentity::with_noise_key(Keypair::from_secret_bytes([3; 32]), [4; 32]);
    let (ih, m1) = InitiatorHandshake::start_with_fixed_ephemeral(
        &a,
        CipherSuite::AesGcmSha256,
        Some(b.peer_id()),
        &[5; 32],
    )
    .unwrap();
    let mut dial: DialHandshake<()> =
        DialHandshake::from_parts(ih, &m1, INITIATOR_ID, RetryTiming::default(), now);
    let h1 = dial.transmit().to_vec();
    let Ok(Datagram::Handshake1 { initiator, msg1 }) = wire::parse(&h1) else {
        panic!()
    };
    assert_eq!(initiator, INITIATOR_ID);
    let (rh, m2) =
        ResponderHandshake::respond_with_fixed_ephemeral(&b, &CipherSuite::ALL, msg1, &[6; 32])
            .unwrap();
    let h2 = wire::encode_handshake2(INITIATOR_ID, RESPONDER_ID, &m2);
    assert!(matches!(
        dial.handle(&h2, now, |_| Ok(())),
        Ok(DialStep::Send)
    ));
    let h3 = dial.transmit().to_vec();
    let Ok(Datagram::Handshake3 { responder, msg3 }) = wire::parse(&h3) else {
        panic!()
    };
    assert_eq!(responder, RESPONDER_ID);
    let (peer, mut sealer, opener) = rh.read_message3(msg3).unwrap();
    assert_eq!(peer, a.peer_id());
    let mut out = BytesMut::new();
    let counter = wire::seal_datagram(
        TYPE_CONFIRM,
        INITIATOR_ID,
        &mut sealer,
        KIND_ACCEPT,
        &[],
        &mut Vec::new(),
        &mut out,
    )
    .unwrap();
    assert_eq!(counter, 0);
    let confirm = out.to_vec();
    let Ok(DialStep::Established(e)) = dial.handle(&confirm, now, |_| Ok(())) else {
        panic!("the confirm is accepted")
    };
    assert_eq!(e.peer, b.peer_id());
    let mut session = Session::new(
        e.local_id,
        e.remote_id,
        e.sealer,
        e.opener,
        ReplayWindow::new(),
        SessionTiming::default(),
        1200,
        now,
    );
    assert!(session.seal_data(b"roll", now, &mut out));
    let responder = Session::new(
        RESPONDER_ID,
        INITIATOR_ID,
        sealer,
        opener,
        ReplayWindow::new(),
        SessionTiming::default(),
        1200,
        now,
    );
    Vector {
        h1,
        h2,
        h3,
        confirm,
        data: out.to_vec(),
        responder,
    }
}

#[test]
fn the_exchange_is_deterministic_and_matches_the_recorded_vector() {
    let v = exchange();
    let again = exchange();
    assert_eq!(v.h2, again.h2);
    assert_eq!(v.data, again.data);
    for (name, d) in [
        ("HANDSHAKE_1", &v.h1),
        ("HANDSHAKE_2", &v.h2),
        ("HANDSHAKE_3", &v.h3),
        ("CONFIRM", &v.confirm),
        ("DATA", &v.data),
    ] {
        println!("{name} ({} bytes): {}", d.len(), hex::encode(d));
    }
    assert_eq!(
        (
            v.h1.len(),
            v.h2.len(),
            v.h3.len(),
            v.confirm.len(),
            v.data.len()
        ),
        (202, 202, 166, 30, 34)
    );
    assert_eq!(
        hex::encode(&v.h1),
        format!("{H1_PREFIX_HEX}{}", "00".repeat(wire::HANDSHAKE_1_PADDING))
    );
    assert_eq!(hex::encode(&v.h2), H2_HEX);
    assert_eq!(hex::encode(&v.h3), H3_HEX);
    assert_eq!(hex::encode(&v.confirm), CONFIRM_HEX);
    assert_eq!(hex::encode(&v.data), DATA_HEX);
}

const H1_PREFIX_HEX: &str =
    "01111111110250a61409b1ddd0325e9b16b700e719e9772c07000b1bd7786e907c653d20495d";
const H2_HEX: &str = concat!(
    "021111111122222222f5b2d6e60f9477e310c2982daaa6c9136c108a1777c5947e448fa37d68174557427a4d",
    "f2d6a1c8c54eb7460e8f0d4fe3b281931b289d5cd67b81355efa4a6cbe637565a36743d2e10de02f29c85f5c",
    "e37f5ee1f6b3c6bf9ebd6b35a80208d76a302120c9ed9a38e0978113fe7a598309fdb3a3047e2e926d503060",
    "81f9b2b8f1034cec95657d6f0ea4800f903098d592ccb0122b8ff4c9570b77b372b39efb15a9daa5db02c63a",
    "1d977de2b0ea9b54253f0332e483f5eb4432aa628a4988c6aff3"
);
const H3_HEX: &str = concat!(
    "0322222222c813c9f3e0fe698763d15ec8bb010140ed8daf81e76be968090016705e0a1eb0348f1db660ca6c",
    "bc9f6dd44ad735c7c08f592a0f7a677632c989d72c5909ce05ba0fa06765a3457fb931e6e76c55cc6b991b30",
    "be2a42fcbd5165c5c3ca0a6627b12ea1a501533e01ac12295ba49041e3be0c1a96245ad50f808711a9f399a6",
    "1f956adef75c5bcd74806d73f9f59e87aa705fb34673f614ffad997dab441ca1a17b"
);
const CONFIRM_HEX: &str = "04111111110000000000000000b0cb09f91568a0e1ca694e2e32d5b1b4d8";
const DATA_HEX: &str = "052222222200000000000000008136a0418d959e90197e9d2b646e5b1ce3883bc114";

#[test]
fn the_recorded_data_datagram_opens_to_roll_on_the_responder() {
    let mut v = exchange();
    let mut plain = BytesMut::new();
    let data = hex::decode(DATA_HEX).unwrap();
    assert_eq!(
        v.responder
            .handle_datagram(&data, Instant::now(), &mut plain),
        Event::Data("roll".into())
    );
}
