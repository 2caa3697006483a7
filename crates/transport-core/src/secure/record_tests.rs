//! Tests of the record layer: chunking, reassembly caps, reject encoding, tampering.

use super::*;
use crate::framing::FrameDecoder;
use crate::secure::handshake::{InitiatorHandshake, ResponderHandshake};
use crate::secure::{CipherSuite, LocalIdentity};
use crate::Keypair;

fn sessions() -> ((RecordSealer, RecordOpener), (RecordSealer, RecordOpener)) {
    let a = LocalIdentity::new(Keypair::generate());
    let b = LocalIdentity::new(Keypair::generate());
    let (mut i, m1) = InitiatorHandshake::start(&a, CipherSuite::default(), None).unwrap();
    let (r, m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1).unwrap();
    i.read_message2(&m2).unwrap();
    let (m3, _, is, io) = i.write_message3().unwrap();
    let (_, rs, ro) = r.read_message3(&m3).unwrap();
    ((is, io), (rs, ro))
}

#[test]
fn tampered_reordered_or_replayed_records_fail_authentication() {
    let ((mut seal, _), (_, mut open)) = sessions();
    let decoder = FrameDecoder::new(MAX_NOISE_MESSAGE);
    let mut wire = BytesMut::new();
    seal.seal_message(b"first", &mut wire).unwrap();
    seal.seal_message(b"second", &mut wire).unwrap();
    let first = decoder.decode(&mut wire).unwrap().unwrap();
    let second = decoder.decode(&mut wire).unwrap().unwrap();
    let mut flipped = first.clone();
    flipped[3] ^= 1;
    assert_eq!(open.open(flipped), Err(ProtocolError::Decrypt));
    let mut tag_flipped = first.clone();
    let last = tag_flipped.len() - 1;
    tag_flipped[last] ^= 0x80;
    assert_eq!(open.open(tag_flipped), Err(ProtocolError::Decrypt));
    assert_eq!(
        open.open(second.clone()),
        Err(ProtocolError::Decrypt),
        "out of order"
    );
    assert_eq!(open.open(first.clone()).unwrap().body.as_ref(), b"first");
    assert_eq!(open.open(first), Err(ProtocolError::Decrypt), "replayed");
    assert_eq!(open.open(second).unwrap().body.as_ref(), b"second");
    assert_eq!(
        open.open(BytesMut::from(&[0u8; 16][..])),
        Err(ProtocolError::EmptyRecord)
    );
    assert_eq!(
        open.open(BytesMut::from(&[0u8; 3][..])),
        Err(ProtocolError::Decrypt)
    );
}

#[test]
fn reject_records_round_trip_every_limit() {
    for limit in [
        LimitKind::TotalConnections,
        LimitKind::ConnectionsPerPeer,
        LimitKind::NewConnectionRate,
        LimitKind::Cooldown,
        LimitKind::HandshakesInFlight,
    ] {
        for retry_after in [None, Some(Duration::from_millis(1500))] {
            let r = LimitRejection { limit, retry_after };
            assert_eq!(decode_reject(&encode_reject(&r)), Ok(r));
        }
    }
    assert!(decode_reject(&[1, 0, 0]).is_err());
    assert!(decode_reject(&[99, 0, 0, 0, 0]).is_err());
}

#[test]
fn close_reasons_are_clipped_at_a_character_boundary() {
    let long = "é".repeat(200);
    let clipped = clip_reason(&long);
    assert!(clipped.len() <= MAX_CLOSE_REASON);
    assert!(clipped.len() >= MAX_CLOSE_REASON - 1);
    assert_eq!(clip_reason("short"), "short");
}

#[test]
fn datagram_records_carry_explicit_nonces() {
    let ((mut seal, _), (_, open)) = sessions();
    let mut out = [0u8; 64];
    let (n0, len0) = seal.seal_raw(b"a", &mut out).unwrap();
    let first = out[..len0].to_vec();
    let (n1, len1) = seal.seal_raw(b"bb", &mut out).unwrap();
    assert_eq!((n0, n1), (0, 1));
    let mut plain = [0u8; 64];
    assert_eq!(open.open_raw(1, &out[..len1], &mut plain), Ok(2));
    assert_eq!(open.open_raw(0, &first, &mut plain), Ok(1), "any order");
    assert_eq!(
        open.open_raw(5, &first, &mut plain),
        Err(ProtocolError::Decrypt)
    );
}
