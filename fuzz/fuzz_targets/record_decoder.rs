//! The stream record decoder (decrypt in place, reassemble chunked messages where they lie) on
//! hostile record sequences, read in pieces of any size. The input is a list of records
//! (`kind % 8`, a `u16` length, that many body bytes; kind 6 is an unknown kind byte, kind 7 a
//! frame that was never encrypted) sealed with fixed keys, then the byte count of each read.
//!
//! Invariants, against a plain model of the rules (`docs/protocol.md` §4):
//! - every message, batch entry and close is exactly what the model expects, in order, and
//!   the decoder fails exactly where the model does, with the same typed error;
//! - no message over the maximum is ever produced;
//! - the buffer never holds more than the message under way, one frame and the last read.
#![no_main]

use bitcraps_transport_core::secure::batch::split_batch;
use bitcraps_transport_core::secure::decoder::{Decoded, RecordDecoder};
use bitcraps_transport_core::secure::record::{
    RecordSealer, KIND_ACCEPT, KIND_BATCH, KIND_CLOSE, KIND_DATA, KIND_DATA_MORE, KIND_REJECT,
    MAX_CHUNK, MAX_NOISE_MESSAGE,
};
use bitcraps_transport_core::secure::CipherSuite;
use bitcraps_transport_core::ProtocolError;
use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 100_000;
const KEYS: ([u8; 32], [u8; 32]) = ([1; 32], [2; 32]);

/// What the application should see.
#[derive(Debug, PartialEq)]
enum Seen {
    Message(Vec<u8>),
    Close(Vec<u8>),
    Failed(ProtocolError),
}

/// The rules, applied to records in the clear (`None` body: a frame that fails to decrypt).
fn model(records: &[(u8, Option<Vec<u8>>)]) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut partial: Option<Vec<u8>> = None;
    for (kind, body) in records {
        let Some(body) = body else {
            out.push(Seen::Failed(ProtocolError::Decrypt));
            return out;
        };
        let fail = |out: &mut Vec<Seen>, e| out.push(Seen::Failed(e));
        match *kind {
            KIND_DATA | KIND_DATA_MORE => {
                let more = *kind == KIND_DATA_MORE;
                if more && body.is_empty() {
                    fail(
                        &mut out,
                        ProtocolError::Malformed("empty chunk with more to follow"),
                    );
                    return out;
                }
                let mut so_far = partial.take().unwrap_or_default();
                if so_far.len() + body.len() > MAX {
                    fail(&mut out, ProtocolError::MessageTooLarge { max: MAX });
                    return out;
                }
                so_far.extend_from_slice(body);
                if more {
                    partial = Some(so_far);
                } else {
                    out.push(Seen::Message(so_far));
                }
            }
            KIND_BATCH if partial.is_some() => {
                fail(&mut out, ProtocolError::UnexpectedRecord(KIND_BATCH));
                return out;
            }
            KIND_BATCH => match split_batch(Bytes::copy_from_slice(body)) {
                Ok(entries) => out.extend(entries.map(|e| Seen::Message(e.to_vec()))),
                Err(e) => {
                    fail(&mut out, e);
                    return out;
                }
            },
            KIND_CLOSE => {
                out.push(Seen::Close(body.clone()));
                return out;
            }
            KIND_ACCEPT | KIND_REJECT => {
                fail(&mut out, ProtocolError::UnexpectedRecord(*kind));
                return out;
            }
            other => {
                fail(&mut out, ProtocolError::UnknownRecord(other));
                return out;
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut seal = RecordSealer::pair(CipherSuite::default(), true, KEYS).0;
    let mut wire = BytesMut::new();
    let mut records = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 && records.len() < 64 {
        let op = rest[0] % 8;
        let len = (usize::from(rest[1]) << 8 | usize::from(rest[2]))
            .min(rest.len() - 3)
            .min(MAX_CHUNK);
        let body = &rest[3..3 + len];
        rest = &rest[3 + len..];
        match op {
            7 => {
                // A frame that was never sealed: fails authentication (or is empty/short).
                wire.put_u32(len as u32);
                wire.put_slice(body);
                records.push((0, None));
            }
            _ => {
                let kind = if op == 6 { 0x42 } else { op };
                seal.seal(kind, body, &mut wire).expect("within a chunk");
                records.push((kind, Some(body.to_vec())));
            }
        }
    }
    let expected = model(&records);
    let piece = 1 + rest.first().map_or(70_000, |&b| usize::from(b) * 300);
    let mut decoder = RecordDecoder::new(
        RecordSealer::pair(CipherSuite::default(), false, KEYS).1,
        MAX,
    );
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    'read: for part in wire.chunks(piece) {
        buf.put_slice(part);
        loop {
            match decoder.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some(Decoded::Message(m))) => {
                    assert!(m.len() <= MAX);
                    seen.push(Seen::Message(m.to_vec()));
                }
                Ok(Some(Decoded::Batch(entries))) => {
                    seen.extend(entries.map(|e| Seen::Message(e.to_vec())));
                }
                Ok(Some(Decoded::Close(reason))) => {
                    seen.push(Seen::Close(reason.to_vec()));
                    break 'read;
                }
                Err(e) => {
                    seen.push(Seen::Failed(e));
                    break 'read;
                }
            }
        }
        assert!(buf.len() <= MAX + 4 + MAX_NOISE_MESSAGE + piece);
    }
    // An unsealed frame shorter than a tag is refused as such, not as a decryption failure.
    if let (Some(Seen::Failed(got)), Some(Seen::Failed(ProtocolError::Decrypt))) =
        (seen.last(), expected.last())
    {
        if matches!(got, ProtocolError::EmptyRecord | ProtocolError::Decrypt) {
            seen.pop();
            seen.push(Seen::Failed(ProtocolError::Decrypt));
        }
    }
    assert_eq!(seen, expected);
});
