//! Byte-exact datagram formats: parsing (every length checked before use, nothing allocated)
//! and encoding. The layout is specified in the [`proto`](super) module documentation.

use bytes::{BufMut, Bytes, BytesMut};

use bitcraps_transport_core::secure::handshake::{MSG1_LEN, MSG2_LEN, MSG3_LEN};
use bitcraps_transport_core::secure::record::{Record, RecordOpener, RecordSealer, TAG_LEN};
use bitcraps_transport_core::ProtocolError;

/// Datagram type: initiator -> responder, Noise message 1, padded.
pub const TYPE_HANDSHAKE_1: u8 = 0x01;
/// Datagram type: responder -> initiator, the responder's session id and Noise message 2.
pub const TYPE_HANDSHAKE_2: u8 = 0x02;
/// Datagram type: initiator -> responder, Noise message 3.
pub const TYPE_HANDSHAKE_3: u8 = 0x03;
/// Datagram type: responder -> initiator, the sealed ACCEPT or REJECT record.
pub const TYPE_CONFIRM: u8 = 0x04;
/// Datagram type: a sealed record after the handshake (DATA, KEEPALIVE or CLOSE).
pub const TYPE_DATA: u8 = 0x05;

/// Record kind (inside a sealed DATA datagram) of a keep-alive: empty body.
pub const KIND_KEEPALIVE: u8 = 0x10;

/// Type byte and 32-bit session id.
pub const HEADER_LEN: usize = 5;
/// The explicit counter (nonce) of a sealed datagram.
pub const COUNTER_LEN: usize = 8;
/// Length of a HANDSHAKE_2 datagram: header, responder id, Noise message 2 (202 bytes).
pub const HANDSHAKE_2_LEN: usize = HEADER_LEN + 4 + MSG2_LEN;
/// Length of a HANDSHAKE_1 datagram: padded to [`HANDSHAKE_2_LEN`] so that answering it never
/// sends more bytes than were received (anti-amplification).
pub const HANDSHAKE_1_LEN: usize = HANDSHAKE_2_LEN;
/// Zero padding at the end of a HANDSHAKE_1 datagram.
pub const HANDSHAKE_1_PADDING: usize = HANDSHAKE_1_LEN - HEADER_LEN - MSG1_LEN;
/// Length of a HANDSHAKE_3 datagram: header and Noise message 3 (166 bytes).
pub const HANDSHAKE_3_LEN: usize = HEADER_LEN + MSG3_LEN;
/// Bytes a sealed datagram adds to its record body: header, counter, kind byte, AEAD tag (30).
pub const SEALED_OVERHEAD: usize = HEADER_LEN + COUNTER_LEN + 1 + TAG_LEN;
/// The largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// A sealed datagram's fields (CONFIRM or DATA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The receiver's session id.
    pub receiver: u32,
    /// The explicit counter the record was sealed with.
    pub counter: u64,
    /// The AEAD ciphertext of kind byte and body, tag included.
    pub ciphertext: &'a [u8],
}

/// One parsed datagram, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// HANDSHAKE_1: the initiator's session id and Noise message 1.
    Handshake1 {
        /// The initiator's session id.
        initiator: u32,
        /// Noise message 1 (suite id and ephemeral key, 33 bytes).
        msg1: &'a [u8],
    },
    /// HANDSHAKE_2: both session ids and Noise message 2.
    Handshake2 {
        /// The initiator's session id (the receiver's).
        initiator: u32,
        /// The responder's session id.
        responder: u32,
        /// Noise message 2 (193 bytes).
        msg2: &'a [u8],
    },
    /// HANDSHAKE_3: the responder's session id and Noise message 3.
    Handshake3 {
        /// The responder's session id (the receiver's).
        responder: u32,
        /// Noise message 3 (161 bytes).
        msg3: &'a [u8],
    },
    /// CONFIRM: the sealed ACCEPT or REJECT record.
    Confirm(Sealed<'a>),
    /// DATA: a sealed record.
    Data(Sealed<'a>),
}

fn id_at(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

fn exact(d: &[u8], len: usize, what: &'static str) -> Result<(), ProtocolError> {
    if d.len() == len {
        Ok(())
    } else {
        Err(ProtocolError::Malformed(what))
    }
}

/// Parses a datagram. Any length other than the one its type fixes, unknown types, non-zero
/// padding and sealed datagrams too short to hold a record are refused.
pub fn parse(d: &[u8]) -> Result<Datagram<'_>, ProtocolError> {
    if d.len() < HEADER_LEN {
        return Err(ProtocolError::Malformed("datagram shorter than its header"));
    }
    let id = id_at(d, 1);
    match d[0] {
        TYPE_HANDSHAKE_1 => {
            exact(
                d,
                HANDSHAKE_1_LEN,
                "handshake 1 of the wrong length (unpadded?)",
            )?;
            if d[HEADER_LEN + MSG1_LEN..].iter().any(|&b| b != 0) {
                return Err(ProtocolError::Malformed("handshake 1 padding is not zero"));
            }
            Ok(Datagram::Handshake1 {
                initiator: id,
                msg1: &d[HEADER_LEN..HEADER_LEN + MSG1_LEN],
            })
        }
        TYPE_HANDSHAKE_2 => {
            exact(d, HANDSHAKE_2_LEN, "handshake 2 of the wrong length")?;
            Ok(Datagram::Handshake2 {
                initiator: id,
                responder: id_at(d, HEADER_LEN),
                msg2: &d[HEADER_LEN + 4..],
            })
        }
        TYPE_HANDSHAKE_3 => {
            exact(d, HANDSHAKE_3_LEN, "handshake 3 of the wrong length")?;
            Ok(Datagram::Handshake3 {
                responder: id,
                msg3: &d[HEADER_LEN..],
            })
        }
        ty @ (TYPE_CONFIRM | TYPE_DATA) => {
            if d.len() < SEALED_OVERHEAD {
                return Err(ProtocolError::Malformed("sealed datagram too short"));
            }
            let mut counter = [0u8; COUNTER_LEN];
            counter.copy_from_slice(&d[HEADER_LEN..HEADER_LEN + COUNTER_LEN]);
            let sealed = Sealed {
                receiver: id,
                counter: u64::from_be_bytes(counter),
                ciphertext: &d[HEADER_LEN + COUNTER_LEN..],
            };
            Ok(if ty == TYPE_CONFIRM {
                Datagram::Confirm(sealed)
            } else {
                Datagram::Data(sealed)
            })
        }
        _ => Err(ProtocolError::Malformed("unknown datagram type")),
    }
}

/// Encodes HANDSHAKE_1 (with its zero padding).
pub fn encode_handshake1(initiator: u32, msg1: &[u8]) -> Vec<u8> {
    debug_assert_eq!(msg1.len(), MSG1_LEN);
    let mut d = Vec::with_capacity(HANDSHAKE_1_LEN);
    d.push(TYPE_HANDSHAKE_1);
    d.extend_from_slice(&initiator.to_be_bytes());
    d.extend_from_slice(msg1);
    d.resize(HANDSHAKE_1_LEN, 0);
    d
}

/// Encodes HANDSHAKE_2.
pub fn encode_handshake2(initiator: u32, responder: u32, msg2: &[u8]) -> Vec<u8> {
    debug_assert_eq!(msg2.len(), MSG2_LEN);
    let mut d = Vec::with_capacity(HANDSHAKE_2_LEN);
    d.push(TYPE_HANDSHAKE_2);
    d.extend_from_slice(&initiator.to_be_bytes());
    d.extend_from_slice(&responder.to_be_bytes());
    d.extend_from_slice(msg2);
    d
}

/// Encodes HANDSHAKE_3.
pub fn encode_handshake3(responder: u32, msg3: &[u8]) -> Vec<u8> {
    debug_assert_eq!(msg3.len(), MSG3_LEN);
    let mut d = Vec::with_capacity(HANDSHAKE_3_LEN);
    d.push(TYPE_HANDSHAKE_3);
    d.extend_from_slice(&responder.to_be_bytes());
    d.extend_from_slice(msg3);
    d
}

/// Seals one record (`kind` and `body`) into `out` (cleared first) as a datagram of type `ty`
/// to session `receiver`, with the sealer's next nonce as the explicit counter. `scratch` holds
/// the plaintext; both buffers are reused across calls.
pub fn seal_datagram(
    ty: u8,
    receiver: u32,
    sealer: &mut RecordSealer,
    kind: u8,
    body: &[u8],
    scratch: &mut Vec<u8>,
    out: &mut BytesMut,
) -> Result<u64, ProtocolError> {
    out.clear();
    append_sealed_datagram(ty, receiver, sealer, kind, body, scratch, out)
}

/// As [`seal_datagram`], but the datagram is appended to what `out` already holds (several
/// datagrams sealed back to back go out in one segmented send). On error `out` is unchanged.
pub fn append_sealed_datagram(
    ty: u8,
    receiver: u32,
    sealer: &mut RecordSealer,
    kind: u8,
    body: &[u8],
    scratch: &mut Vec<u8>,
    out: &mut BytesMut,
) -> Result<u64, ProtocolError> {
    if body.len() + SEALED_OVERHEAD > MAX_UDP_PAYLOAD {
        return Err(ProtocolError::MessageTooLarge {
            max: MAX_UDP_PAYLOAD - SEALED_OVERHEAD,
        });
    }
    scratch.clear();
    scratch.push(kind);
    scratch.extend_from_slice(body);
    let begin = out.len();
    out.reserve(body.len() + SEALED_OVERHEAD);
    out.put_u8(ty);
    out.put_u32(receiver);
    out.put_u64(sealer.next_nonce());
    let start = out.len();
    out.resize(start + scratch.len() + TAG_LEN, 0);
    match sealer.seal_raw(scratch, &mut out[start..]) {
        Ok((counter, n)) => {
            debug_assert_eq!(n, scratch.len() + TAG_LEN);
            Ok(counter)
        }
        Err(e) => {
            out.truncate(begin);
            Err(e)
        }
    }
}

/// Decrypts a sealed datagram's record into `plain` (reused; the returned body shares its
/// allocation). The caller checks the replay window before and marks it after.
pub fn open_sealed(
    opener: &RecordOpener,
    sealed: &Sealed<'_>,
    plain: &mut BytesMut,
) -> Result<Record, ProtocolError> {
    let len = sealed.ciphertext.len() - TAG_LEN;
    if plain.capacity() < len {
        plain.reserve(len.max(16 * 1024));
    }
    plain.resize(len, 0);
    let n = opener.open_raw(sealed.counter, sealed.ciphertext, plain)?;
    let mut record: Bytes = plain.split_to(n).freeze();
    if record.is_empty() {
        return Err(ProtocolError::EmptyRecord);
    }
    let body = record.split_off(1);
    Ok(Record {
        kind: record[0],
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_what_the_spec_says() {
        assert_eq!(HANDSHAKE_2_LEN, 202);
        assert_eq!(HANDSHAKE_1_LEN, 202);
        assert_eq!(HANDSHAKE_1_PADDING, 164);
        assert_eq!(HANDSHAKE_3_LEN, 166);
        assert_eq!(SEALED_OVERHEAD, 30);
    }

    #[test]
    fn handshake_datagrams_round_trip() {
        let m1 = [7u8; MSG1_LEN];
        let d = encode_handshake1(0xA1B2C3D4, &m1);
        assert_eq!(d.len(), HANDSHAKE_1_LEN);
        assert_eq!(&d[..5], &[1, 0xA1, 0xB2, 0xC3, 0xD4]);
        assert_eq!(
            parse(&d).unwrap(),
            Datagram::Handshake1 {
                initiator: 0xA1B2C3D4,
                msg1: &m1
            }
        );
        let m2 = [9u8; MSG2_LEN];
        let d = encode_handshake2(1, 2, &m2);
        assert_eq!(
            parse(&d).unwrap(),
            Datagram::Handshake2 {
                initiator: 1,
                responder: 2,
                msg2: &m2
            }
        );
        let m3 = [3u8; MSG3_LEN];
        let d = encode_handshake3(5, &m3);
        assert_eq!(
            parse(&d).unwrap(),
            Datagram::Handshake3 {
                responder: 5,
                msg3: &m3
            }
        );
    }

    #[test]
    fn unpadded_or_badly_padded_handshake_1_is_refused() {
        let d = encode_handshake1(1, &[7u8; MSG1_LEN]);
        assert!(parse(&d[..HEADER_LEN + MSG1_LEN]).is_err(), "unpadded");
        assert!(parse(&d[..HANDSHAKE_1_LEN - 1]).is_err(), "one short");
        let mut long = d.clone();
        long.push(0);
        assert!(parse(&long).is_err(), "one long");
        let mut dirty = d;
        dirty[HANDSHAKE_1_LEN - 1] = 1;
        assert!(parse(&dirty).is_err(), "non-zero padding");
    }

    #[test]
    fn every_truncation_and_unknown_type_is_refused() {
        for ty in 0..=255u8 {
            let known = (TYPE_HANDSHAKE_1..=TYPE_DATA).contains(&ty);
            let mut d = vec![ty; 300];
            d[1..5].copy_from_slice(&[0; 4]);
            if !known {
                assert!(parse(&d).is_err(), "type {ty:#x}");
            }
        }
        assert!(parse(&[]).is_err());
        assert!(parse(&[TYPE_DATA, 0, 0, 0]).is_err());
        let short = vec![TYPE_DATA; SEALED_OVERHEAD - 1];
        assert!(parse(&short).is_err());
        assert!(parse(&[TYPE_DATA; SEALED_OVERHEAD]).is_ok());
        assert!(parse(&vec![TYPE_HANDSHAKE_2; HANDSHAKE_2_LEN + 1]).is_err());
        assert!(parse(&[TYPE_HANDSHAKE_3; HANDSHAKE_3_LEN - 1]).is_err());
    }
}
