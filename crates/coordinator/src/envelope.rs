//! The coordinator's wire envelope: every message the coordinator puts on a connection is one
//! envelope, so each application message gets an id the receiver acknowledges and dedups.
//!
//! Byte-exact format (all integers big-endian):
//!
//! | type | byte 0 | then |
//! |---|---|---|
//! | `DATA` | `0x01` | message id (`u64`, 8 bytes), then the application payload (0 or more bytes) |
//! | `ACK`  | `0x02` | 1 to [`MAX_ACK_IDS`] message ids, 8 bytes each (length - 1 is a multiple of 8) |
//! | `PING` | `0x03` | nonce (`u64`, 8 bytes) |
//! | `PONG` | `0x04` | the nonce of the `PING` it answers (8 bytes) |
//!
//! Anything else (an unknown type, a short header, trailing bytes on a `PING`/`PONG`, an `ACK`
//! with no id, too many ids or a partial id) is a [`EnvelopeError`]: the connection that
//! carried it is closed. Decoding never allocates: a `DATA` payload is a slice of the received
//! frame, and `ACK` ids are read in place.

use bytes::{BufMut, Bytes, BytesMut};

/// `DATA`: an application message with its id.
pub const TYPE_DATA: u8 = 0x01;
/// `ACK`: ids of messages delivered to the application (or recognized as duplicates).
pub const TYPE_ACK: u8 = 0x02;
/// `PING`: a health probe; answered with a `PONG` carrying the same nonce.
pub const TYPE_PING: u8 = 0x03;
/// `PONG`: the answer to a `PING`.
pub const TYPE_PONG: u8 = 0x04;
/// Bytes before a `DATA` payload.
pub const DATA_HEADER: usize = 9;
/// Most ids one `ACK` carries.
pub const MAX_ACK_IDS: usize = 1024;

/// A malformed envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The frame is empty.
    #[error("empty envelope")]
    Empty,
    /// The type byte is not one of `DATA`, `ACK`, `PING`, `PONG`.
    #[error("unknown envelope type {0:#04x}")]
    UnknownType(u8),
    /// The frame's length does not fit its type.
    #[error("envelope of type {kind:#04x} has a bad length of {len} bytes")]
    BadLength {
        /// The type byte.
        kind: u8,
        /// The frame's length.
        len: usize,
    },
}

/// A decoded envelope (zero-copy: slices of the received frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// An application message.
    Data {
        /// Its id, unique per sender and peer.
        id: u64,
        /// The application payload.
        payload: Bytes,
    },
    /// Acknowledged ids.
    Ack(AckIds),
    /// A health probe.
    Ping(u64),
    /// The answer to a probe.
    Pong(u64),
}

/// The ids of an `ACK`, read in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckIds(Bytes);

impl AckIds {
    /// How many ids.
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }

    /// True if there is none (never, for a decoded `ACK`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ids, in the order they were written.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
    }
}

fn read_u64(frame: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&frame[1..9]);
    u64::from_be_bytes(b)
}

impl Envelope {
    /// Decodes one received frame.
    pub fn decode(frame: Bytes) -> Result<Self, EnvelopeError> {
        let Some(&kind) = frame.first() else {
            return Err(EnvelopeError::Empty);
        };
        let len = frame.len();
        let bad = EnvelopeError::BadLength { kind, len };
        match kind {
            TYPE_DATA if len >= DATA_HEADER => Ok(Self::Data {
                id: read_u64(&frame),
                payload: frame.slice(DATA_HEADER..),
            }),
            TYPE_ACK if len > 1 && (len - 1) % 8 == 0 && (len - 1) / 8 <= MAX_ACK_IDS => {
                Ok(Self::Ack(AckIds(frame.slice(1..))))
            }
            TYPE_PING if len == 9 => Ok(Self::Ping(read_u64(&frame))),
            TYPE_PONG if len == 9 => Ok(Self::Pong(read_u64(&frame))),
            TYPE_DATA | TYPE_ACK | TYPE_PING | TYPE_PONG => Err(bad),
            other => Err(EnvelopeError::UnknownType(other)),
        }
    }
}

/// Encodes envelopes into one growing buffer, so frames share allocations.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: BytesMut,
}

/// The arena grows by at least this much at a time.
const ARENA: usize = 64 * 1024;

impl Encoder {
    fn room(&mut self, n: usize) {
        if self.buf.capacity() < n {
            self.buf.reserve(n.max(ARENA));
        }
    }

    /// A `DATA` envelope (copies the payload once, behind the 9-byte header).
    pub fn data(&mut self, id: u64, payload: &[u8]) -> Bytes {
        self.room(DATA_HEADER + payload.len());
        self.buf.put_u8(TYPE_DATA);
        self.buf.put_u64(id);
        self.buf.put_slice(payload);
        self.buf.split().freeze()
    }

    /// An `ACK` of `ids` (at most [`MAX_ACK_IDS`] are taken from the front; the rest stay).
    pub fn ack(&mut self, ids: &mut std::collections::VecDeque<u64>) -> Bytes {
        let n = ids.len().min(MAX_ACK_IDS);
        self.room(1 + 8 * n);
        self.buf.put_u8(TYPE_ACK);
        for id in ids.drain(..n) {
            self.buf.put_u64(id);
        }
        self.buf.split().freeze()
    }

    /// A `PING` or `PONG`.
    pub fn probe(&mut self, kind: u8, nonce: u64) -> Bytes {
        self.room(9);
        self.buf.put_u8(kind);
        self.buf.put_u64(nonce);
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let mut e = Encoder::default();
        let d = e.data(7, b"roll");
        assert_eq!(&d[..], &[1, 0, 0, 0, 0, 0, 0, 0, 7, b'r', b'o', b'l', b'l']);
        assert_eq!(
            Envelope::decode(d).unwrap(),
            Envelope::Data {
                id: 7,
                payload: Bytes::from_static(b"roll")
            }
        );
        let mut ids: std::collections::VecDeque<u64> = (1..=3).collect();
        let a = e.ack(&mut ids);
        assert!(ids.is_empty());
        assert_eq!(a.len(), 25);
        match Envelope::decode(a).unwrap() {
            Envelope::Ack(ids) => assert_eq!(ids.iter().collect::<Vec<_>>(), vec![1, 2, 3]),
            other => panic!("{other:?}"),
        }
        let p = e.probe(TYPE_PING, u64::MAX);
        assert_eq!(Envelope::decode(p).unwrap(), Envelope::Ping(u64::MAX));
        let p = e.probe(TYPE_PONG, 3);
        assert_eq!(Envelope::decode(p).unwrap(), Envelope::Pong(3));
    }

    #[test]
    fn ack_takes_at_most_the_maximum() {
        let mut e = Encoder::default();
        let mut ids: std::collections::VecDeque<u64> = (0..(MAX_ACK_IDS as u64 + 5)).collect();
        let a = e.ack(&mut ids);
        assert_eq!(ids.len(), 5);
        assert!(matches!(Envelope::decode(a).unwrap(), Envelope::Ack(i) if i.len() == MAX_ACK_IDS));
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        assert_eq!(Envelope::decode(Bytes::new()), Err(EnvelopeError::Empty));
        assert_eq!(
            Envelope::decode(Bytes::from_static(&[9, 1])),
            Err(EnvelopeError::UnknownType(9))
        );
        for bad in [&[1u8, 0, 0][..], &[2], &[2, 0, 0, 0], &[3, 0], &[4; 10]] {
            assert!(matches!(
                Envelope::decode(Bytes::copy_from_slice(bad)),
                Err(EnvelopeError::BadLength { .. })
            ));
        }
        let too_many = vec![2u8; 1 + 8 * (MAX_ACK_IDS + 1)];
        assert!(Envelope::decode(Bytes::from(too_many)).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Envelope::decode(Bytes::from(bytes));
        }

        #[test]
        fn data_round_trips(id in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut e = Encoder::default();
            let frame = e.data(id, &payload);
            prop_assert_eq!(Envelope::decode(frame).unwrap(), Envelope::Data { id, payload: Bytes::from(payload) });
        }
    }
}
