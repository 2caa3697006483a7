//! Tests of BATCH records: the splitter's bounds, sealing runs of messages, and round trips
//! (proptest) through the real record layer.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::framing::FrameDecoder;
use crate::secure::decoder::{Decoded, RecordDecoder};
use crate::secure::record::{RecordOpener, KIND_DATA, KIND_DATA_MORE, MAX_NOISE_MESSAGE};
use crate::secure::CipherSuite;
use crate::BatchError;

/// Fixed split keys: the sealer of one side and as many openers of the other as a test needs.
const KEYS: ([u8; 32], [u8; 32]) = ([3; 32], [4; 32]);

fn sealer() -> RecordSealer {
    RecordSealer::pair(CipherSuite::default(), true, KEYS).0
}

fn opener() -> RecordOpener {
    RecordSealer::pair(CipherSuite::default(), false, KEYS).1
}

/// The messages in `wire` (through the stream record decoder) and the kinds of its records.
fn receive(wire: &mut BytesMut, max: usize) -> (Vec<Bytes>, Vec<u8>) {
    let frames = FrameDecoder::new(MAX_NOISE_MESSAGE);
    let mut copy = wire.clone();
    let mut open = opener();
    let mut kinds = Vec::new();
    while let Some(frame) = frames.decode(&mut copy).unwrap() {
        kinds.push(open.open(frame).unwrap().kind);
    }
    let mut decoder = RecordDecoder::new(opener(), max);
    let mut messages = Vec::new();
    while let Some(decoded) = decoder.decode(wire).unwrap() {
        match decoded {
            Decoded::Message(m) => messages.push(m),
            Decoded::Batch(entries) => messages.extend(entries),
            Decoded::Close(_) => panic!("no close was sent"),
        }
    }
    assert!(wire.is_empty());
    (messages, kinds)
}

#[test]
fn malformed_bodies_are_typed_errors() {
    let err = |b: &[u8]| split_batch(Bytes::copy_from_slice(b)).unwrap_err();
    assert_eq!(err(b""), BatchError::Empty.into());
    assert_eq!(err(&[0]), BatchError::TruncatedLength { offset: 0 }.into());
    assert_eq!(
        err(&[0, 1, 7, 0]),
        BatchError::TruncatedLength { offset: 3 }.into()
    );
    assert_eq!(
        err(&[0, 3, 1, 2]),
        BatchError::PastEnd { offset: 0, len: 3 }.into()
    );
    assert_eq!(
        err(&[0, 0, 0xFF, 0xFF]),
        BatchError::PastEnd {
            offset: 2,
            len: 0xFFFF
        }
        .into()
    );
}

#[test]
fn entries_are_slices_of_the_body_without_copy() {
    let body = Bytes::from_static(&[0, 2, b'h', b'i', 0, 0, 0, 1, b'!']);
    let entries: Vec<Bytes> = split_batch(body.clone()).unwrap().collect();
    assert_eq!(entries, [&b"hi"[..], b"", b"!"]);
    assert_eq!(entries[0].as_ptr(), body[2..].as_ptr(), "shares the body");
}

#[test]
fn a_batch_mid_chunked_message_or_with_an_oversized_entry_is_refused() {
    let mut seal = sealer();
    let mut wire = BytesMut::new();
    seal.seal(KIND_BATCH, &[0, 1, b'x'], &mut wire).unwrap();
    seal.seal(KIND_BATCH, &[0, 1, b'x', 0, 5, 1, 2, 3, 4, 5], &mut wire)
        .unwrap();
    let mut decoder = RecordDecoder::new(opener(), 4);
    assert!(matches!(
        decoder.decode(&mut wire),
        Ok(Some(Decoded::Batch(_)))
    ));
    assert_eq!(
        decoder.decode(&mut wire).unwrap_err(),
        ProtocolError::MessageTooLarge { max: 4 }
    );
    let mut wire = BytesMut::new();
    let mut seal = sealer();
    seal.seal(KIND_DATA_MORE, b"ab", &mut wire).unwrap();
    seal.seal(KIND_BATCH, &[0, 1, b'x'], &mut wire).unwrap();
    let mut decoder = RecordDecoder::new(opener(), 4);
    assert_eq!(
        decoder.decode(&mut wire).unwrap_err(),
        ProtocolError::UnexpectedRecord(KIND_BATCH)
    );
}

#[test]
fn runs_of_small_messages_share_records_and_big_ones_go_as_data() {
    let mut seal = sealer();
    let unbatchable = Bytes::from(vec![9u8; MAX_BATCH_ENTRY + 1]);
    let chunked = Bytes::from(vec![8u8; MAX_CHUNK + 1]);
    let messages: Vec<Bytes> = vec![
        Bytes::from_static(b"a"),
        Bytes::from_static(b""),
        Bytes::from_static(b"bc"),
        unbatchable,
        Bytes::from_static(b"lonely"),
        chunked,
    ];
    let mut wire = BytesMut::new();
    let records = seal.seal_messages(&messages, &mut wire).unwrap();
    let (got, kinds) = receive(&mut wire, 1 << 20);
    assert_eq!(got, messages);
    // One byte over an entry goes as one DATA; one byte over a chunk as DATA_MORE then DATA.
    assert_eq!(
        kinds,
        [KIND_BATCH, KIND_DATA, KIND_DATA, KIND_DATA_MORE, KIND_DATA]
    );
    assert_eq!(records, kinds.len());
}

#[test]
fn a_full_record_of_messages_splits_into_as_many_batches_as_needed() {
    let mut seal = sealer();
    let messages: Vec<Bytes> = (0..3000u32)
        .map(|i| Bytes::from(i.to_be_bytes().repeat(16)))
        .collect();
    let mut wire = BytesMut::new();
    let records = seal.seal_messages(&messages, &mut wire).unwrap();
    let per_record = MAX_BATCH_BODY / (BATCH_ENTRY_HEADER + 64);
    assert_eq!(records, messages.len().div_ceil(per_record));
    let (got, kinds) = receive(&mut wire, 1 << 20);
    assert_eq!(got, messages);
    assert!(kinds.iter().all(|&k| k == KIND_BATCH));
}

#[test]
fn the_largest_entry_fits_one_batch_and_one_more_byte_does_not() {
    assert_eq!(
        batch_body_len(&[vec![0u8; MAX_BATCH_ENTRY]]),
        Some(MAX_BATCH_BODY)
    );
    assert_eq!(batch_body_len(&[vec![0u8; MAX_BATCH_ENTRY + 1]]), None);
    assert_eq!(batch_body_len::<&[u8]>(&[]), None);
    let mut seal = sealer();
    let mut wire = BytesMut::new();
    seal.seal_batch(&[vec![7u8; MAX_BATCH_ENTRY]], &mut wire)
        .unwrap();
    assert_eq!(
        wire.len(),
        4 + MAX_NOISE_MESSAGE,
        "exactly the largest record"
    );
    let (got, _) = receive(&mut wire, 1 << 20);
    assert_eq!(got, [vec![7u8; MAX_BATCH_ENTRY]]);
}

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(MAX_BATCH_ENTRY),
        Just(MAX_BATCH_ENTRY + 1),
        0usize..80,
        0usize..3000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batch_bodies_round_trip(lens in proptest::collection::vec(0usize..600, 1..100)) {
        let messages: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &n)| vec![i as u8; n]).collect();
        let mut body = BytesMut::new();
        match encode_batch_body(&messages, &mut body) {
            Ok(()) => {
                let body = body.freeze();
                let entries: Vec<Bytes> = split_batch(body.clone()).unwrap().collect();
                prop_assert_eq!(&entries, &messages);
                let mut again = BytesMut::new();
                encode_batch_body(&entries, &mut again).unwrap();
                prop_assert_eq!(again.freeze(), body);
            }
            Err(_) => prop_assert!(batch_body_len(&messages).is_none()),
        }
    }

    #[test]
    fn any_messages_survive_sealing_in_order(lens in proptest::collection::vec(sizes(), 0..12)) {
        let mut seal = sealer();
        let messages: Vec<Bytes> = lens.iter().enumerate().map(|(i, &n)| Bytes::from(vec![i as u8; n])).collect();
        let mut wire = BytesMut::new();
        let records = seal.seal_messages(&messages, &mut wire).unwrap();
        let (got, kinds) = receive(&mut wire, 1 << 20);
        prop_assert_eq!(got, messages);
        prop_assert_eq!(records, kinds.len());
    }
}
