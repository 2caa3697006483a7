//! Envelope round trips, the byte-exact vectors of docs/coordinator.md, and decoder bounds.

use super::*;
use bytes::BytesMut;
use proptest::prelude::*;

fn all(frame: Bytes) -> Result<Vec<Envelope>, EnvelopeError> {
    Envelopes::new(frame).collect()
}

fn hello() -> Hello {
    Hello {
        flags: FLAG_RESUMED,
        session: 0x0102_0304_0506_0708,
        window_messages: 1024,
        window_bytes: 16 << 20,
        your_session: 9,
        lanes: [
            LaneState {
                delivered: 1,
                received: 2,
            },
            LaneState {
                delivered: 3,
                received: 4,
            },
        ],
    }
}

/// The vectors of docs/protocol.md section 11, computed.
fn compute() -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut f = FrameBuilder::new(BytesMut::new(), 1 << 16);
    f.data(0, 7, b"roll");
    f.ack(
        1,
        LaneState {
            delivered: 2,
            received: 3,
        },
    );
    v.push((
        "coordinator.data_then_ack".into(),
        hex::encode(f.finish().0),
    ));
    let mut f = FrameBuilder::new(BytesMut::new(), 1 << 16);
    f.hello(&hello());
    f.probe(TYPE_PING, 5);
    f.close(CloseCode::FlowControl);
    v.push((
        "coordinator.hello_ping_close".into(),
        hex::encode(f.finish().0),
    ));
    let mut f = FrameBuilder::new(BytesMut::new(), 1 << 16);
    f.data_next(1, 99, 70_000);
    v.push(("coordinator.data_next".into(), hex::encode(f.finish().0)));
    v
}

/// `name = hex` lines of the ```coordinator-test-vectors block of docs/protocol.md.
fn documented() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/protocol.md exists");
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```coordinator-test-vectors") {
            inside = true;
        } else if t.starts_with("```") {
            inside = false;
        } else if let (true, Some((k, v))) = (inside, t.split_once(" = ")) {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[test]
fn coordinator_protocol_document_vectors_match_the_code() {
    let computed = compute();
    if std::env::var_os("BITCRAPS_PRINT_VECTORS").is_some() {
        for (k, v) in &computed {
            println!("{k} = {v}");
        }
    }
    let documented = documented();
    for (name, value) in &computed {
        let doc = documented.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        assert_eq!(doc, Some(value), "vector `{name}` in docs/protocol.md");
    }
    assert_eq!(documented.len(), computed.len(), "no stale vectors");
    // And they decode to what they were built from.
    let frame = Bytes::from(hex::decode(&computed[1].1).unwrap());
    assert_eq!(
        all(frame).unwrap(),
        vec![
            Envelope::Hello(hello()),
            Envelope::Ping(5),
            Envelope::Close(CloseCode::FlowControl)
        ]
    );
}

#[test]
fn vectors_match_the_document() {
    let mut f = FrameBuilder::new(BytesMut::new(), 1 << 16);
    assert!(f.data(0, 7, b"roll"));
    assert!(f.ack(
        1,
        LaneState {
            delivered: 2,
            received: 3
        }
    ));
    let (frame, _) = f.finish();
    assert_eq!(
        hex::encode(&frame),
        concat!(
            "11",
            "00",
            "0000000000000007",
            "00000004",
            "726f6c6c",
            "13",
            "01",
            "0000000000000003",
            "0000000000000002"
        )
    );
    let mut f = FrameBuilder::new(BytesMut::new(), 1 << 16);
    assert!(f.hello(&hello()));
    assert!(f.probe(TYPE_PING, 5));
    assert!(f.close(CloseCode::FlowControl));
    let (frame, _) = f.finish();
    assert_eq!(
        hex::encode(&frame),
        concat!(
            "10",
            "01",
            "01",
            "0102030405060708",
            "00000400",
            "01000000",
            "0000000000000009",
            "0000000000000001",
            "0000000000000002",
            "0000000000000003",
            "0000000000000004",
            "14",
            "0000000000000005",
            "1601"
        )
    );
    assert_eq!(
        all(frame).unwrap(),
        vec![
            Envelope::Hello(hello()),
            Envelope::Ping(5),
            Envelope::Close(CloseCode::FlowControl)
        ]
    );
}

#[test]
fn coalesced_frames_round_trip_zero_copy() {
    let mut f = FrameBuilder::new(BytesMut::new(), 1 << 16);
    for seq in 0..10u64 {
        assert!(f.data(1, seq, &seq.to_be_bytes()));
    }
    assert!(f.data_next(0, 99, 70_000));
    let (frame, _) = f.finish();
    let base = frame.as_ptr() as usize;
    let envs = all(frame.clone()).unwrap();
    assert_eq!(envs.len(), 11);
    for (i, e) in envs.iter().take(10).enumerate() {
        match e {
            Envelope::Data { lane, seq, payload } => {
                assert_eq!((*lane, *seq), (1, i as u64));
                assert_eq!(&payload[..], &(i as u64).to_be_bytes());
                let at = payload.as_ptr() as usize - base;
                assert!(at < frame.len(), "payload is a slice of the frame");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        envs[10],
        Envelope::DataNext {
            lane: 0,
            seq: 99,
            len: 70_000
        }
    );
}

#[test]
fn the_builder_respects_its_limit() {
    let mut f = FrameBuilder::new(BytesMut::new(), 30);
    assert!(f.data(0, 1, &[0; 14]));
    assert!(!f.data(0, 2, &[0; 1]));
    assert!(f.close(CloseCode::Goodbye));
    assert!(f.len() <= 30);
}

#[test]
fn malformed_messages_are_typed_errors() {
    let e = |b: &[u8]| all(Bytes::copy_from_slice(b)).unwrap_err();
    assert_eq!(e(&[]), EnvelopeError::Empty);
    assert_eq!(e(&[0x01]), EnvelopeError::UnknownType(1));
    assert_eq!(e(&[0x14, 0, 0]), EnvelopeError::Truncated { kind: 0x14 });
    assert_eq!(
        e(&[0x11, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        EnvelopeError::BadLane(2)
    );
    // A DATA whose length runs past the end.
    assert_eq!(
        e(&[0x11, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 1]),
        EnvelopeError::Truncated { kind: 0x11 }
    );
    // Something after a DATA_NEXT.
    let mut f = FrameBuilder::new(BytesMut::new(), 100);
    f.data_next(0, 1, 5);
    f.close(CloseCode::Goodbye);
    assert_eq!(
        all(f.finish().0).unwrap_err(),
        EnvelopeError::TrailingAfterDataNext
    );
    // An ACK that claims more delivered than received.
    let mut f = FrameBuilder::new(BytesMut::new(), 100);
    f.ack(
        0,
        LaneState {
            delivered: 2,
            received: 1,
        },
    );
    assert!(matches!(
        all(f.finish().0).unwrap_err(),
        EnvelopeError::Invalid(_)
    ));
    let mut h = vec![0x10, 2];
    h.resize(HELLO_LEN, 0);
    assert_eq!(e(&h), EnvelopeError::Version(2));
}

proptest! {
    #[test]
    fn decoding_never_panics_and_stays_in_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let frame = Bytes::from(bytes);
        let mut total = 0usize;
        for env in Envelopes::new(frame.clone()) {
            match env {
                Ok(Envelope::Data { payload, .. }) => {
                    total += payload.len();
                    prop_assert!(payload.len() <= frame.len());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        prop_assert!(total <= frame.len());
    }

    #[test]
    fn built_frames_decode_to_what_was_written(
        items in proptest::collection::vec((0u8..2, any::<u64>(), proptest::collection::vec(any::<u8>(), 0..40)), 1..20)
    ) {
        let mut f = FrameBuilder::new(BytesMut::new(), 1 << 20);
        for (lane, seq, payload) in &items {
            prop_assert!(f.data(*lane, *seq, payload));
        }
        let got = all(f.finish().0).unwrap();
        let want: Vec<_> = items
            .into_iter()
            .map(|(lane, seq, payload)| Envelope::Data { lane, seq, payload: Bytes::from(payload) })
            .collect();
        prop_assert_eq!(got, want);
    }
}
