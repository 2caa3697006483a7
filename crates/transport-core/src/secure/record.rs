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
//!
//! On a stream, each record is framed as `u32` BE length then the Noise ciphertext; nonces are
//! implicit counters per direction, starting at 0 (the responder's ACCEPT/REJECT is its nonce 0).
//! Datagram backends carry the nonce explicitly (see [`RecordSealer::seal_raw`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use snow::StatelessTransportState;

use crate::policy::{LimitKind, LimitRejection};
use crate::ProtocolError;

/// Largest Noise message (ciphertext, tag included).
pub const MAX_NOISE_MESSAGE: usize = 65535;
/// AEAD tag length.
pub const TAG_LEN: usize = 16;
/// Largest record plaintext (kind byte and body).
pub const MAX_RECORD_PLAINTEXT: usize = MAX_NOISE_MESSAGE - TAG_LEN;
/// Largest chunk of application data in one record.
pub const MAX_CHUNK: usize = MAX_RECORD_PLAINTEXT - 1;
/// Longest close reason sent (longer ones are cut at a character boundary).
pub const MAX_CLOSE_REASON: usize = 256;

/// Record kind: the last (or only) chunk of a message.
pub const KIND_DATA: u8 = 0x00;
/// Record kind: a chunk with more to follow.
pub const KIND_DATA_MORE: u8 = 0x01;
/// Record kind: close, with a reason.
pub const KIND_CLOSE: u8 = 0x02;
/// Record kind: the responder admitted the connection.
pub const KIND_ACCEPT: u8 = 0x03;
/// Record kind: the responder refused the connection (a limit).
pub const KIND_REJECT: u8 = 0x04;

/// One decrypted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The kind byte.
    pub kind: u8,
    /// The body after the kind byte.
    pub body: Bytes,
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
    state: Arc<StatelessTransportState>,
    nonce: u64,
    scratch: Vec<u8>,
}

/// Decrypts incoming records.
pub struct RecordOpener {
    state: Arc<StatelessTransportState>,
    nonce: u64,
    plain: BytesMut,
}

impl RecordSealer {
    pub(crate) fn pair(state: StatelessTransportState) -> (RecordSealer, RecordOpener) {
        let state = Arc::new(state);
        (
            RecordSealer {
                state: state.clone(),
                nonce: 0,
                scratch: Vec::new(),
            },
            RecordOpener {
                state,
                nonce: 0,
                plain: BytesMut::new(),
            },
        )
    }

    /// The nonce the next record will use.
    pub fn next_nonce(&self) -> u64 {
        self.nonce
    }

    /// Appends one length-prefixed record (`kind` and `body`, body at most [`MAX_CHUNK`]) to `out`.
    pub fn seal(&mut self, kind: u8, body: &[u8], out: &mut BytesMut) -> Result<(), ProtocolError> {
        if body.len() > MAX_CHUNK {
            return Err(ProtocolError::MessageTooLarge { max: MAX_CHUNK });
        }
        self.scratch.clear();
        self.scratch.push(kind);
        self.scratch.extend_from_slice(body);
        let ct_len = self.scratch.len() + TAG_LEN;
        out.reserve(4 + ct_len);
        out.put_u32(ct_len as u32);
        let start = out.len();
        out.resize(start + ct_len, 0);
        let n = self
            .state
            .write_message(self.nonce, &self.scratch, &mut out[start..])
            .map_err(|_| ProtocolError::Malformed("nonce space exhausted"))?;
        debug_assert_eq!(n, ct_len);
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

    /// Encrypts `plaintext` with the next nonce into `out` (no length prefix), for datagram
    /// backends that carry the nonce explicitly. Returns the nonce used and the bytes written.
    pub fn seal_raw(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<(u64, usize), ProtocolError> {
        let n = self
            .state
            .write_message(self.nonce, plaintext, out)
            .map_err(|_| ProtocolError::Malformed("record too large or nonce space exhausted"))?;
        let nonce = self.nonce;
        self.nonce += 1;
        Ok((nonce, n))
    }
}

impl RecordOpener {
    /// Decrypts one record (a frame's payload) with the next implicit nonce.
    pub fn open(&mut self, ciphertext: &[u8]) -> Result<Record, ProtocolError> {
        if ciphertext.len() < TAG_LEN + 1 {
            return Err(if ciphertext.len() == TAG_LEN {
                ProtocolError::EmptyRecord
            } else {
                ProtocolError::Decrypt
            });
        }
        if ciphertext.len() > MAX_NOISE_MESSAGE {
            return Err(ProtocolError::FrameTooLarge {
                len: ciphertext.len() as u64,
                max: MAX_NOISE_MESSAGE,
            });
        }
        let plain_len = ciphertext.len() - TAG_LEN;
        if self.plain.capacity() < plain_len {
            self.plain.reserve(plain_len.max(16 * 1024));
        }
        self.plain.resize(plain_len, 0);
        let n = self
            .state
            .read_message(self.nonce, ciphertext, &mut self.plain)
            .map_err(|_| ProtocolError::Decrypt)?;
        self.nonce += 1;
        let mut record = self.plain.split_to(n).freeze();
        let kind = record.get_u8();
        Ok(Record { kind, body: record })
    }

    /// Decrypts a datagram's `ciphertext` sealed with the explicit `nonce` into `out`; returns
    /// the plaintext length. Replay checks are the caller's (see `ReplayWindow`).
    pub fn open_raw(
        &self,
        nonce: u64,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ProtocolError> {
        self.state
            .read_message(nonce, ciphertext, out)
            .map_err(|_| ProtocolError::Decrypt)
    }
}

/// Reassembles DATA_MORE / DATA chunks into messages, refusing any message over `max` bytes.
#[derive(Debug)]
pub struct MessageAssembler {
    partial: BytesMut,
    in_progress: bool,
    max: usize,
}

impl MessageAssembler {
    /// An assembler for messages of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            partial: BytesMut::new(),
            in_progress: false,
            max,
        }
    }

    /// Feeds a data record; returns a whole message when its last chunk arrives.
    pub fn push(&mut self, record: Record) -> Result<Option<Bytes>, ProtocolError> {
        let more = match record.kind {
            KIND_DATA => false,
            KIND_DATA_MORE => true,
            other => return Err(ProtocolError::UnexpectedRecord(other)),
        };
        if more && record.body.is_empty() {
            return Err(ProtocolError::Malformed("empty chunk with more to follow"));
        }
        let total = self.partial.len() + record.body.len();
        if total > self.max {
            return Err(ProtocolError::MessageTooLarge { max: self.max });
        }
        if !self.in_progress && !more {
            return Ok(Some(record.body));
        }
        self.in_progress = true;
        self.partial.extend_from_slice(&record.body);
        if more {
            return Ok(None);
        }
        self.in_progress = false;
        let message = self.partial.split().freeze();
        // Give back the memory of a large message instead of keeping it for the next one.
        self.partial = BytesMut::new();
        Ok(Some(message))
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
