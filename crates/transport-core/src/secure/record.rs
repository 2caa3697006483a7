//! Records: what travels after the handshake, each encrypted as one Noise transport message.
//!
//! A record's plaintext is one kind byte and a body:
//!
//! | kind | name | body |
//! |---|---|---|
//! | `0x00` | DATA | the last (or only) chunk of an application message |
//! | `0x01` | DATA_MORE | a non-empty chunk; more chunks of the same message follow |
//! | `0x02` | CLOSE | UTF-8 reason, at most 256 bytes |
//! | `0x03` | ACCEPT | empty: the responder admitted the connection |
//! | `0x04` | REJECT | limit id (1 byte), retry-after in ms (u32 BE, `0xFFFFFFFF` = unknown), UTF-8 text |
//! | `0x05` | BATCH | at least one entry: `u16` BE length, then that many bytes of one whole message |
//!
//! On a stream, each record is framed as `u32` BE length then the Noise ciphertext; nonces are
//! implicit counters per direction, starting at 0 (the responder's ACCEPT/REJECT is its nonce 0).
//! Datagram backends carry the nonce explicitly (see [`RecordSealer::seal_raw`]).

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::cipher::DirectionCipher;
use super::CipherSuite;

use crate::policy::{LimitKind, LimitRejection};
use crate::ProtocolError;

/// Largest Noise message (ciphertext, tag included).
pub const MAX_NOISE_MESSAGE: usize = 65535;
/// AEAD tag length.
pub const TAG_LEN: usize = super::cipher::TAG_LEN;
/// Largest record plaintext (kind byte and body).
pub const MAX_RECORD_PLAINTEXT: usize = MAX_NOISE_MESSAGE - TAG_LEN;
/// Largest chunk of application data in one record.
pub const MAX_CHUNK: usize = MAX_RECORD_PLAINTEXT - 1;
/// Longest close reason sent (longer ones are cut at a character boundary).
pub const MAX_CLOSE_REASON: usize = 256;

pub use super::kind::{
    RecordKind, KIND_ACCEPT, KIND_BATCH, KIND_CLOSE, KIND_DATA, KIND_DATA_MORE, KIND_REJECT,
};

/// One decrypted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The kind byte (a [`RecordKind`] on streams; datagram backends add kinds of their own).
    pub kind: u8,
    /// The body after the kind byte.
    pub body: Bytes,
}

impl Record {
    /// The record's kind, or [`ProtocolError::UnknownRecord`].
    pub fn record_kind(&self) -> Result<RecordKind, ProtocolError> {
        RecordKind::from_byte(self.kind)
    }
}

/// The wire id of a limit in a REJECT record.
pub fn limit_id(kind: LimitKind) -> u8 {
    match kind {
        LimitKind::TotalConnections => 1,
        LimitKind::ConnectionsPerPeer => 2,
        LimitKind::NewConnectionRate => 3,
        LimitKind::Cooldown => 4,
        LimitKind::HandshakesInFlight => 5,
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}

/// Parses a REJECT body into the limit that refused us.
pub fn decode_reject(body: &[u8]) -> Result<LimitRejection, ProtocolError> {
    if body.len() < 5 {
        return Err(ProtocolError::Malformed("reject record too short"));
    }
    let limit = match body[0] {
        1 => LimitKind::TotalConnections,
        2 => LimitKind::ConnectionsPerPeer,
        3 => LimitKind::NewConnectionRate,
        4 => LimitKind::Cooldown,
        5 => LimitKind::HandshakesInFlight,
        _ => return Err(ProtocolError::Malformed("unknown limit in reject record")),
    };
    let ms = u32::from_be_bytes([body[1], body[2], body[3], body[4]]);
    let retry_after = (ms != u32::MAX).then(|| Duration::from_millis(u64::from(ms)));
    Ok(LimitRejection { limit, retry_after })
}

/// Encodes a REJECT body.
pub fn encode_reject(rejection: &LimitRejection) -> Vec<u8> {
    let ms = rejection.retry_after.map_or(u32::MAX, |d| {
        u32::try_from(d.as_millis()).unwrap_or(u32::MAX - 1)
    });
    let mut body = vec![limit_id(rejection.limit)];
    body.extend_from_slice(&ms.to_be_bytes());
    body.extend_from_slice(rejection.to_string().as_bytes());
    body.truncate(5 + MAX_CLOSE_REASON);
    body
}

/// Cuts `reason` to at most [`MAX_CLOSE_REASON`] bytes at a character boundary.
pub fn clip_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Encrypts outgoing records. One per connection direction; not shared between tasks.
pub struct RecordSealer {
    cipher: DirectionCipher,
    nonce: u64,
}

/// Decrypts incoming records.
pub struct RecordOpener {
    cipher: DirectionCipher,
    nonce: u64,
}

fn exhausted() -> ProtocolError {
    ProtocolError::Malformed("nonce space exhausted")
}

impl RecordSealer {
    /// The record layer of one side from Noise's split keys (initiator-to-responder first);
    /// `initiator` says which of them this side sends with. Nonces start at 0. The handshakes
    /// return these ready-made; this is for test vectors and for peers that ran the handshake
    /// elsewhere.
    pub fn pair(
        suite: CipherSuite,
        initiator: bool,
        (k1, k2): ([u8; 32], [u8; 32]),
    ) -> (RecordSealer, RecordOpener) {
        let (send, recv) = if initiator { (k1, k2) } else { (k2, k1) };
        (
            RecordSealer {
                cipher: DirectionCipher::new(suite, &send),
                nonce: 0,
            },
            RecordOpener {
                cipher: DirectionCipher::new(suite, &recv),
                nonce: 0,
            },
        )
    }

    /// The nonce the next record will use.
    pub fn next_nonce(&self) -> u64 {
        self.nonce
    }

    /// Appends one length-prefixed record (`kind` and `body`, body at most [`MAX_CHUNK`]) to `out`.
    /// The body is copied once, into `out`, and encrypted there.
    pub fn seal(&mut self, kind: u8, body: &[u8], out: &mut BytesMut) -> Result<(), ProtocolError> {
        if body.len() > MAX_CHUNK {
            return Err(ProtocolError::MessageTooLarge { max: MAX_CHUNK });
        }
        let start = self.begin(kind, body.len(), out)?;
        out.put_slice(body);
        self.finish(start, out)
    }

    /// Starts a record of `kind` whose body (`body_len` bytes, at most [`MAX_CHUNK`]) the caller
    /// appends to `out` next; [`RecordSealer::finish`] then encrypts it. Returns where the
    /// plaintext starts.
    pub(crate) fn begin(
        &mut self,
        kind: u8,
        body_len: usize,
        out: &mut BytesMut,
    ) -> Result<usize, ProtocolError> {
        debug_assert!(body_len <= MAX_CHUNK);
        if self.nonce == u64::MAX {
            return Err(exhausted());
        }
        let plain_len = 1 + body_len;
        out.reserve(4 + plain_len + TAG_LEN);
        out.put_u32((plain_len + TAG_LEN) as u32);
        let start = out.len();
        out.put_u8(kind);
        Ok(start)
    }

    /// Encrypts the plaintext appended since [`RecordSealer::begin`] returned `start`.
    pub(crate) fn finish(&mut self, start: usize, out: &mut BytesMut) -> Result<(), ProtocolError> {
        let tag = self
            .cipher
            .seal(self.nonce, &mut out[start..])
            .map_err(|()| exhausted())?;
        out.put_slice(&tag);
        self.nonce += 1;
        Ok(())
    }

    /// Appends an application message as one or more DATA records.
    pub fn seal_message(
        &mut self,
        message: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        let mut chunks = message.chunks(MAX_CHUNK).peekable();
        if chunks.peek().is_none() {
            return self.seal(KIND_DATA, &[], out);
        }
        while let Some(chunk) = chunks.next() {
            let kind = if chunks.peek().is_some() {
                KIND_DATA_MORE
            } else {
                KIND_DATA
            };
            self.seal(kind, chunk, out)?;
        }
        Ok(())
    }

    /// Encrypts `plaintext` with the next nonce into `out` (ciphertext then tag, no length
    /// prefix), for datagram backends that carry the nonce explicitly. Returns the nonce used
    /// and the bytes written.
    pub fn seal_raw(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<(u64, usize), ProtocolError> {
        let n = plaintext.len() + TAG_LEN;
        if n > MAX_NOISE_MESSAGE || n > out.len() {
            return Err(ProtocolError::Malformed("record too large for the buffer"));
        }
        if self.nonce == u64::MAX {
            return Err(exhausted());
        }
        out[..plaintext.len()].copy_from_slice(plaintext);
        let tag = self
            .cipher
            .seal(self.nonce, &mut out[..plaintext.len()])
            .map_err(|()| exhausted())?;
        out[plaintext.len()..n].copy_from_slice(&tag);
        let nonce = self.nonce;
        self.nonce += 1;
        Ok((nonce, n))
    }
}

impl RecordOpener {
    /// Decrypts one record (a frame's payload) in place with the next implicit nonce. The
    /// returned body shares the frame's memory: no copy.
    pub fn open(&mut self, mut frame: BytesMut) -> Result<Record, ProtocolError> {
        let (kind, body_len) = self.open_in_place(&mut frame)?;
        frame.truncate(1 + body_len);
        let mut record = frame.freeze();
        record.advance(1);
        Ok(Record { kind, body: record })
    }

    /// Decrypts one record (a frame's payload, ciphertext then tag) in place with the next
    /// implicit nonce. Returns the kind byte and the body's length: the body is then
    /// `frame[1..1 + body_len]` in plaintext (the tag's bytes are left as they were).
    pub fn open_in_place(&mut self, frame: &mut [u8]) -> Result<(u8, usize), ProtocolError> {
        if frame.len() > MAX_NOISE_MESSAGE {
            return Err(ProtocolError::FrameTooLarge {
                len: frame.len() as u64,
                max: MAX_NOISE_MESSAGE,
            });
        }
        if frame.len() < TAG_LEN + 1 {
            return Err(if frame.len() == TAG_LEN {
                ProtocolError::EmptyRecord
            } else {
                ProtocolError::Decrypt
            });
        }
        let plain_len = frame.len() - TAG_LEN;
        let (plain, tag) = frame.split_at_mut(plain_len);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| ProtocolError::Decrypt)?;
        self.cipher
            .open(self.nonce, plain, &tag)
            .map_err(|()| ProtocolError::Decrypt)?;
        self.nonce += 1;
        Ok((plain[0], plain_len - 1))
    }

    /// Decrypts a datagram's `ciphertext` (ciphertext then tag) sealed with the explicit
    /// `nonce` into `out`; returns the plaintext length. Replay checks are the caller's (see
    /// `ReplayWindow`).
    pub fn open_raw(
        &self,
        nonce: u64,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ProtocolError> {
        if ciphertext.len() < TAG_LEN || ciphertext.len() > MAX_NOISE_MESSAGE {
            return Err(ProtocolError::Decrypt);
        }
        let n = ciphertext.len() - TAG_LEN;
        if out.len() < n {
            return Err(ProtocolError::Malformed(
                "buffer too small for the datagram",
            ));
        }
        let tag: [u8; TAG_LEN] = ciphertext[n..]
            .try_into()
            .map_err(|_| ProtocolError::Decrypt)?;
        out[..n].copy_from_slice(&ciphertext[..n]);
        self.cipher
            .open(nonce, &mut out[..n], &tag)
            .map_err(|()| ProtocolError::Decrypt)?;
        Ok(n)
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
