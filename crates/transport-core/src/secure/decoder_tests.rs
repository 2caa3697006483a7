//! Tests of the stream record decoder: every size class, reassembly in place (no copy for one
//! record, no buffer of its own for several), the caps, refused kinds, and (proptest) any
//! messages through the real sealer, read in pieces of any size.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::secure::batch::MAX_BATCH_ENTRY;
use crate::secure::record::{
    RecordSealer, KIND_ACCEPT, KIND_CLOSE, KIND_DATA, KIND_DATA_MORE, KIND_REJECT, MAX_CHUNK,
};
use crate::secure::CipherSuite;

const KEYS: ([u8; 32], [u8; 32]) = ([5; 32], [6; 32]);

fn sealer() -> RecordSealer {
    RecordSealer::pair(CipherSuite::default(), true, KEYS).0
}

fn decoder(max: usize) -> RecordDecoder {
    RecordDecoder::new(
        RecordSealer::pair(CipherSuite::default(), false, KEYS).1,
        max,
    )
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + seed) as u8).collect()
}

/// Everything `wire` decodes to, fed `piece` bytes at a time (as reads would deliver it).
fn decode_in_pieces(
    d: &mut RecordDecoder,
    wire: &[u8],
    piece: usize,
) -> Result<Vec<Decoded>, ProtocolError> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in wire.chunks(piece.max(1)) {
        buf.put_slice(part);
        while let Some(decoded) = d.decode(&mut buf)? {
            out.push(decoded);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(out)
}

fn messages(decoded: Vec<Decoded>) -> Vec<Bytes> {
    let mut out = Vec::new();
    for d in decoded {
        match d {
            Decoded::Message(m) => out.push(m),
            Decoded::Batch(entries) => out.extend(entries),
            Decoded::Close(_) => panic!("unexpected close"),
        }
    }
    out
}

#[test]
fn messages_of_every_size_class_round_trip_in_any_pieces() {
    let sizes = [
        0,
        1,
        MAX_CHUNK - 1,
        MAX_CHUNK,
        MAX_CHUNK + 1,
        65_536,
        3 * MAX_CHUNK + 5,
    ];
    for piece in [1, 7, 4096, 1 << 20] {
        let mut seal = sealer();
        let mut d = decoder(4 * MAX_CHUNK);
        let mut wire = BytesMut::new();
        let sent: Vec<Vec<u8>> = sizes.iter().map(|&n| pattern(n, n)).collect();
        for m in &sent {
            seal.seal_message(m, &mut wire).unwrap();
        }
        let got = messages(decode_in_pieces(&mut d, &wire, piece).unwrap());
        assert_eq!(got, sent, "piece {piece}");
        assert!(!d.in_message());
    }
}

#[test]
fn a_message_is_a_slice_of_the_read_buffer_however_many_records_it_took() {
    for len in [100, MAX_CHUNK, 65_536, 3 * MAX_CHUNK + 5] {
        let mut wire = BytesMut::new();
        sealer().seal_message(&pattern(len, 1), &mut wire).unwrap();
        let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
        let mut d = decoder(1 << 20);
        let Some(Decoded::Message(m)) = d.decode(&mut wire).unwrap() else {
            panic!("no message");
        };
        assert_eq!(m, pattern(len, 1));
        let (start, end) = (m.as_ptr() as usize, m.as_ptr() as usize + m.len());
        assert!(
            range.contains(&start) && end <= range.end,
            "len {len}: copied"
        );
        assert!(wire.is_empty());
    }
}

#[test]
fn chunks_of_mixed_sizes_reassemble_in_order() {
    let sizes = [3usize, 20_000, 5, 1, 40_000, 16_384, 7];
    let mut seal = sealer();
    let mut wire = BytesMut::new();
    let mut expected = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let body = pattern(n, i);
        expected.extend_from_slice(&body);
        let kind = if i + 1 == sizes.len() {
            KIND_DATA
        } else {
            KIND_DATA_MORE
        };
        seal.seal(kind, &body, &mut wire).unwrap();
    }
    seal.seal_message(b"after", &mut wire).unwrap();
    let mut d = decoder(1 << 20);
    let got = messages(decode_in_pieces(&mut d, &wire, 3000).unwrap());
    assert_eq!(got, [expected, b"after".to_vec()]);
}

#[test]
fn a_message_over_the_maximum_is_refused_and_exactly_the_maximum_is_not() {
    let max = MAX_CHUNK + 10;
    let mut wire = BytesMut::new();
    sealer().seal_message(&vec![1u8; max], &mut wire).unwrap();
    let got = messages(decode_in_pieces(&mut decoder(max), &wire, 1 << 20).unwrap());
    assert_eq!(got[0].len(), max);
    let mut wire = BytesMut::new();
    sealer()
        .seal_message(&vec![1u8; max + 1], &mut wire)
        .unwrap();
    assert_eq!(
        decode_in_pieces(&mut decoder(max), &wire, 1 << 20).unwrap_err(),
        ProtocolError::MessageTooLarge { max }
    );
    // One record over a small maximum is refused on its own.
    let mut wire = BytesMut::new();
    sealer().seal_message(&[0u8; 11], &mut wire).unwrap();
    assert_eq!(
        decoder(10).decode(&mut wire).unwrap_err(),
        ProtocolError::MessageTooLarge { max: 10 }
    );
}

#[test]
fn empty_continuations_and_handshake_kinds_are_refused_and_unknown_kinds_typed() {
    for (kind, body, error) in [
        (
            KIND_DATA_MORE,
            &b""[..],
            ProtocolError::Malformed("empty chunk with more to follow"),
        ),
        (
            KIND_ACCEPT,
            b"",
            ProtocolError::UnexpectedRecord(KIND_ACCEPT),
        ),
        (
            KIND_REJECT,
            b"x",
            ProtocolError::UnexpectedRecord(KIND_REJECT),
        ),
        (0x77, b"x", ProtocolError::UnknownRecord(0x77)),
    ] {
        let mut wire = BytesMut::new();
        sealer().seal(kind, body, &mut wire).unwrap();
        assert_eq!(decoder(100).decode(&mut wire).unwrap_err(), error);
    }
    let mut wire = BytesMut::new();
    sealer().seal(KIND_DATA, b"", &mut wire).unwrap();
    let Some(Decoded::Message(m)) = decoder(100).decode(&mut wire).unwrap() else {
        panic!("an empty message is a message");
    };
    assert!(m.is_empty());
}

#[test]
fn a_close_ends_a_message_under_way_and_carries_its_reason() {
    let mut seal = sealer();
    let mut wire = BytesMut::new();
    seal.seal(KIND_DATA_MORE, &pattern(30_000, 2), &mut wire)
        .unwrap();
    seal.seal(KIND_CLOSE, b"bye", &mut wire).unwrap();
    let mut d = decoder(1 << 20);
    let Some(Decoded::Close(reason)) = d.decode(&mut wire).unwrap() else {
        panic!("no close");
    };
    assert_eq!(&reason[..], b"bye");
    assert!(wire.is_empty() && !d.in_message());
}

#[test]
fn a_tampered_chunk_in_the_middle_of_a_message_fails_authentication() {
    let mut wire = BytesMut::new();
    sealer()
        .seal_message(&pattern(3 * MAX_CHUNK, 3), &mut wire)
        .unwrap();
    let second = 4 + MAX_NOISE_MESSAGE + 4 + 10;
    wire[second] ^= 1;
    let mut d = decoder(1 << 20);
    assert_eq!(d.decode(&mut wire).unwrap_err(), ProtocolError::Decrypt);
}

#[test]
fn a_frame_over_the_noise_maximum_is_refused_before_reserving() {
    let mut wire = BytesMut::from(&[0u8, 1, 0, 0][..]);
    let cap = wire.capacity();
    assert!(matches!(
        decoder(1 << 20).decode(&mut wire),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
    assert_eq!(wire.capacity(), cap);
}

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..100,
        0usize..3000,
        Just(MAX_BATCH_ENTRY + 1),
        Just(MAX_CHUNK),
        Just(65_536),
        (MAX_CHUNK..3 * MAX_CHUNK),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any messages, sealed in any groups (batches, chunks), read in pieces of any size: the
    /// same messages in order, and the buffer never holds more than the message under way and
    /// one frame beyond what the last read added.
    #[test]
    fn any_messages_read_in_any_pieces_arrive_whole_and_in_order(
        lens in proptest::collection::vec(sizes(), 1..10),
        groups in proptest::collection::vec(1usize..5, 1..10),
        piece in prop_oneof![1usize..64, 64usize..70_000],
    ) {
        let sent: Vec<Bytes> = lens.iter().enumerate().map(|(i, &n)| Bytes::from(pattern(n, i))).collect();
        let mut seal = sealer();
        let mut wire = BytesMut::new();
        let mut rest = &sent[..];
        for g in groups.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*g).min(rest.len());
            seal.seal_messages(&rest[..n], &mut wire).unwrap();
            rest = &rest[n..];
        }
        let max = 3 * MAX_CHUNK;
        let mut d = decoder(max);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for part in wire.chunks(piece) {
            buf.put_slice(part);
            while let Some(decoded) = d.decode(&mut buf).unwrap() {
                match decoded {
                    Decoded::Message(m) => got.push(m),
                    Decoded::Batch(entries) => got.extend(entries),
                    Decoded::Close(_) => prop_assert!(false, "no close was sent"),
                }
            }
            prop_assert!(buf.len() <= max + 4 + MAX_NOISE_MESSAGE + piece);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, sent);
    }
}
