//! Tests of the IK machines: both sides agree on keys and identities with every suite, and every
//! wrong key, wrong suite, wrong length and damaged byte is refused.

use bytes::BytesMut;

use super::*;
use crate::secure::handshake::{InitiatorHandshake, ResponderHandshake};
use crate::secure::record::KIND_ACCEPT;
use crate::Keypair;

fn pair() -> (std::sync::Arc<LocalIdentity>, std::sync::Arc<LocalIdentity>) {
    (
        LocalIdentity::new(Keypair::generate()),
        LocalIdentity::new(Keypair::generate()),
    )
}

/// An ACCEPT record sealed by `sealer`, without its length prefix (what `open` takes).
fn accept(sealer: &mut RecordSealer) -> BytesMut {
    let mut frame = BytesMut::new();
    sealer.seal(KIND_ACCEPT, &[], &mut frame).unwrap();
    frame.split_off(4)
}

#[test]
fn one_round_trip_proves_both_identities_and_keys_agree() {
    for suite in CipherSuite::ALL {
        let (a, b) = pair();
        let (i, m1) = IkInitiator::start(&a, suite, b.peer_id(), b.noise_public()).unwrap();
        assert_eq!(m1.len(), IK_MSG1_LEN);
        assert_eq!(m1[0], suite.ik_id());
        assert!(is_ik(m1[0]));
        let mut r = respond(&b, &CipherSuite::ALL, &m1).unwrap();
        assert_eq!(r.peer, a.peer_id());
        assert_eq!(r.suite, suite);
        assert_eq!(r.msg2.len(), IK_MSG2_LEN);
        let (mut i_seal, mut i_open) = i.read_message2(&r.msg2).unwrap();
        // Records flow both ways with the split keys.
        assert_eq!(
            i_open.open(accept(&mut r.sealer)).unwrap().kind,
            KIND_ACCEPT
        );
        assert_eq!(
            r.opener.open(accept(&mut i_seal)).unwrap().kind,
            KIND_ACCEPT
        );
    }
}

#[test]
fn a_message_sealed_to_an_old_static_key_is_stale() {
    let (a, b) = pair();
    // `b` restarted: same identity, new Noise static key.
    let b_old = LocalIdentity::with_noise_key(b.keypair().clone(), [0x42; 32]);
    let (_, m1) = IkInitiator::start(
        &a,
        CipherSuite::default(),
        b.peer_id(),
        b_old.noise_public(),
    )
    .unwrap();
    assert!(matches!(
        respond(&b, &CipherSuite::ALL, &m1),
        Err(HandshakeError::StaleKey)
    ));
    // Another node holding none of b's keys cannot read it either.
    let (_, c) = pair();
    assert!(matches!(
        respond(&c, &CipherSuite::ALL, &m1),
        Err(HandshakeError::StaleKey)
    ));
}

#[test]
fn refused_suites_xx_ids_and_bad_lengths_cost_no_dh() {
    let (a, b) = pair();
    let (_, m1) = IkInitiator::start(
        &a,
        CipherSuite::ChaChaPolyBlake2s,
        b.peer_id(),
        b.noise_public(),
    )
    .unwrap();
    assert!(matches!(
        respond(&b, &[CipherSuite::AesGcmSha256], &m1),
        Err(HandshakeError::UnsupportedSuite(0x11))
    ));
    assert!(matches!(
        respond(&b, &CipherSuite::ALL, &m1[..100]),
        Err(HandshakeError::BadLength { message: 1, .. })
    ));
    for id in [0x01, 0x02, 0x13, 0x21, 0xFF] {
        let mut bad = m1.clone();
        bad[0] = id;
        assert!(
            matches!(
                respond(&b, &CipherSuite::ALL, &bad),
                Err(HandshakeError::UnsupportedSuite(x)) if x == id
            ),
            "id {id:#04x}"
        );
    }
    // An XX message 1 is not an IK one, and the reverse.
    let (_, xx1) = InitiatorHandshake::start(&a, CipherSuite::default(), None).unwrap();
    assert!(respond(&b, &CipherSuite::ALL, &xx1).is_err());
    assert!(ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1).is_err());
}

#[test]
fn every_damaged_byte_is_refused() {
    let (a, b) = pair();
    for i in 1..IK_MSG1_LEN {
        let (_, mut m1) =
            IkInitiator::start(&a, CipherSuite::default(), b.peer_id(), b.noise_public()).unwrap();
        m1[i] ^= 1;
        assert!(respond(&b, &CipherSuite::ALL, &m1).is_err(), "flip at {i}");
    }
    for i in 0..IK_MSG2_LEN {
        let (init, m1) =
            IkInitiator::start(&a, CipherSuite::default(), b.peer_id(), b.noise_public()).unwrap();
        let mut r = respond(&b, &CipherSuite::ALL, &m1).unwrap();
        r.msg2[i] ^= 1;
        assert!(init.read_message2(&r.msg2).is_err(), "flip at {i}");
    }
    let (init, m1) =
        IkInitiator::start(&a, CipherSuite::default(), b.peer_id(), b.noise_public()).unwrap();
    let r = respond(&b, &CipherSuite::ALL, &m1).unwrap();
    assert!(matches!(
        init.read_message2(&r.msg2[..IK_MSG2_LEN - 1]),
        Err(HandshakeError::BadLength { message: 2, .. })
    ));
}

#[test]
fn a_replayed_message_1_gives_keys_the_replayer_cannot_use() {
    // Message 1 can be replayed by anyone; the responder's answer then uses a fresh ephemeral
    // key, so the records it seals open only with the original dialer's ephemeral secret,
    // which the dialer already threw away. The stream driver also waits for the dialer's
    // confirmation record before it reports a connection (tested in `stream`).
    let (a, b) = pair();
    let (init, m1) =
        IkInitiator::start(&a, CipherSuite::default(), b.peer_id(), b.noise_public()).unwrap();
    let first = respond(&b, &CipherSuite::ALL, &m1).unwrap();
    let mut replay = respond(&b, &CipherSuite::ALL, &m1).unwrap();
    assert_ne!(first.msg2, replay.msg2);
    let (_, mut i_open) = init.read_message2(&first.msg2).unwrap();
    assert!(i_open.open(accept(&mut replay.sealer)).is_err());
}

#[test]
fn the_static_static_dh_is_cached_after_ik_and_gives_the_same_bytes() {
    let (a, b) = pair();
    // XX never pairs the two static keys: nothing to cache.
    let (mut i, m1) = InitiatorHandshake::start(&a, CipherSuite::default(), None).unwrap();
    let (r, m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1).unwrap();
    i.read_message2(&m2).unwrap();
    r.read_message3(&i.write_message3().unwrap().0).unwrap();
    assert_eq!((a.statics().len(), b.statics().len()), (0, 0));
    // The same IK exchange twice with fixed ephemeral keys: the second runs on cached `ss`
    // values on both sides and must produce the same bytes.
    let run = || {
        let (i, m1) = IkInitiator::start_with_fixed_ephemeral(
            &a,
            CipherSuite::default(),
            b.peer_id(),
            b.noise_public(),
            &[0x31; 32],
        )
        .unwrap();
        let r = respond_with_fixed_ephemeral(&b, &CipherSuite::ALL, &m1, &[0x32; 32]).unwrap();
        i.read_message2(&r.msg2).unwrap();
        (m1, r.msg2)
    };
    let first = run();
    assert_eq!((a.statics().len(), b.statics().len()), (1, 1));
    assert_eq!(run(), first);
    // A message 1 that fails leaves nothing behind.
    let c = LocalIdentity::new(Keypair::generate());
    let (_, m1) = IkInitiator::start(&c, CipherSuite::default(), b.peer_id(), &[9; 32]).unwrap();
    assert!(respond(&b, &CipherSuite::ALL, &m1).is_err());
    assert_eq!(b.statics().len(), 1);
}
