//! The BATCH record splitter on hostile bodies. Invariants: either a typed batch error, or
//! entries whose headers and lengths add up to exactly the body; every entry is a slice of the
//! body in order; and encoding the entries again gives back the same body.
#![no_main]

use bitcraps_transport_core::secure::batch::{
    encode_batch_body, split_batch, BATCH_ENTRY_HEADER, MAX_BATCH_BODY,
};
use bitcraps_transport_core::ProtocolError;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(&data[..data.len().min(MAX_BATCH_BODY)]);
    match split_batch(body.clone()) {
        Err(ProtocolError::Batch(_)) => {}
        Err(other) => panic!("untyped error {other:?}"),
        Ok(entries) => {
            let count = entries.len();
            let entries: Vec<Bytes> = entries.collect();
            assert_eq!(entries.len(), count);
            assert!(!entries.is_empty());
            let total: usize = entries.iter().map(|e| BATCH_ENTRY_HEADER + e.len()).sum();
            assert_eq!(total, body.len());
            let mut offset = 0;
            for e in &entries {
                let start = offset + BATCH_ENTRY_HEADER;
                assert_eq!(&body[start..start + e.len()], &e[..]);
                offset = start + e.len();
            }
            let mut again = BytesMut::new();
            encode_batch_body(&entries, &mut again).expect("a split body re-encodes");
            assert_eq!(&again[..], &body[..]);
        }
    }
});
