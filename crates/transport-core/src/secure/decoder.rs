//! The receiving half of a stream connection's record layer, without I/O: takes whole frames off
//! the front of the read buffer, decrypts each record in place, and reassembles a chunked message
//! (DATA_MORE ... DATA) where its chunks lie.
//!
//! A message of one record reaches the application as a slice of the read buffer: no copy. A
//! message of several records is gathered at the front of the read buffer: each later chunk is
//! moved back over the length prefix, kind byte and tag that separate it from the one before, so
//! a 64 KiB message (a full chunk and an 18-byte one) costs an 18-byte move instead of a copy of
//! the whole message into a buffer of its own, and no allocation of its own.
//!
//! ```text
//! buf: | message so far (plaintext) | gap (headers, tags) | next frame ... |
//!        0 ........................ len ............. len + gap
//! ```

use bytes::{Buf, Bytes, BytesMut};

use super::batch::{split_checked, BatchEntries};
use super::kind::RecordKind;
use super::record::{RecordOpener, MAX_NOISE_MESSAGE};
use crate::framing::{FrameDecoder, Peek, LENGTH_PREFIX_LEN};
use crate::ProtocolError;

/// What one record gave the application.
#[derive(Debug)]
pub enum Decoded {
    /// A whole message (one DATA record, or the DATA that ended a chunked one).
    Message(Bytes),
    /// The whole messages of a BATCH record, checked, each a slice of the record.
    Batch(BatchEntries),
    /// The remote closed; the body is its reason (UTF-8, at most 256 bytes as sent).
    Close(Bytes),
}

/// A chunked message under way: its first `len` bytes sit at the front of the buffer, followed
/// by `gap` bytes that belong to no message (the headers and tags of the records read so far).
#[derive(Debug, Clone, Copy)]
struct Partial {
    len: usize,
    gap: usize,
}

/// Decodes the records of one stream direction (see the module docs).
pub struct RecordDecoder {
    opener: RecordOpener,
    frames: FrameDecoder,
    max_message: usize,
    partial: Option<Partial>,
    /// Bytes the next frame still needs, as of the last `decode` that found none whole.
    needed: usize,
}

impl RecordDecoder {
    /// A decoder opening records with `opener` and refusing messages over `max_message` bytes.
    pub fn new(opener: RecordOpener, max_message: usize) -> Self {
        Self {
            opener,
            frames: FrameDecoder::new(MAX_NOISE_MESSAGE),
            max_message,
            partial: None,
            needed: LENGTH_PREFIX_LEN,
        }
    }

    /// True while a chunked message is under way (its bytes are held at the front of the buffer).
    pub fn in_message(&self) -> bool {
        self.partial.is_some()
    }

    /// Bytes at the front of the buffer that belong to the message under way (and the gap after
    /// them): the next frame starts here.
    fn next_frame_at(&self) -> usize {
        self.partial.map_or(0, |p| p.len + p.gap)
    }

    /// How many more bytes the next frame needs, as of the last [`RecordDecoder::decode`] that
    /// returned `Ok(None)` (at most one maximum frame): what the next read should make room for.
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// Decodes records until one gives the application something; `Ok(None)` when `buf` holds
    /// no further whole frame (see [`RecordDecoder::needed`]; nothing is reserved here: the
    /// reader owns its buffers). `buf` must hold what earlier calls left in it, followed by the bytes read
    /// since. Every error is fatal for the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, ProtocolError> {
        loop {
            let at = self.next_frame_at();
            let len = match self.frames.peek_at(buf, at)? {
                Peek::Whole(len) => len,
                Peek::Short(missing) => {
                    self.needed = missing;
                    return Ok(None);
                }
            };
            let start = at + LENGTH_PREFIX_LEN;
            let end = start + len;
            let (kind, body_len) = self.opener.open_in_place(&mut buf[start..end])?;
            let body = start + 1;
            match RecordKind::from_byte(kind)? {
                RecordKind::Data | RecordKind::DataMore => {
                    let more = kind == RecordKind::DataMore.byte();
                    if let Some(message) = self.chunk(buf, more, body, body_len, end)? {
                        return Ok(Some(Decoded::Message(message)));
                    }
                }
                RecordKind::Batch => {
                    if self.in_message() {
                        return Err(ProtocolError::UnexpectedRecord(kind));
                    }
                    let body = take(buf, body, body_len, end);
                    return split_checked(body, self.max_message).map(|e| Some(Decoded::Batch(e)));
                }
                RecordKind::Close => {
                    // A close ends the connection; a message it interrupts is not delivered.
                    buf.advance(at);
                    self.partial = None;
                    let body = take(buf, body - at, body_len, end - at);
                    return Ok(Some(Decoded::Close(body)));
                }
                RecordKind::Accept | RecordKind::Reject => {
                    return Err(ProtocolError::UnexpectedRecord(kind))
                }
            }
        }
    }

    /// Takes a data chunk whose body is `buf[body..body + body_len]` and whose frame ends at
    /// `end`; the whole message when this chunk ends it.
    fn chunk(
        &mut self,
        buf: &mut BytesMut,
        more: bool,
        body: usize,
        body_len: usize,
        end: usize,
    ) -> Result<Option<Bytes>, ProtocolError> {
        if more && body_len == 0 {
            return Err(ProtocolError::Malformed("empty chunk with more to follow"));
        }
        let so_far = self.partial.map_or(0, |p| p.len);
        let total = so_far + body_len;
        if total > self.max_message {
            return Err(ProtocolError::MessageTooLarge {
                max: self.max_message,
            });
        }
        if self.partial.is_none() {
            if !more {
                return Ok(Some(take(buf, body, body_len, end)));
            }
            // The first chunk stays where it is: the message starts at its body.
            buf.advance(body);
            self.partial = Some(Partial {
                len: body_len,
                gap: end - body - body_len,
            });
            return Ok(None);
        }
        buf.copy_within(body..body + body_len, so_far);
        let gap = end - total;
        if more {
            self.partial = Some(Partial { len: total, gap });
            return Ok(None);
        }
        self.partial = None;
        let message = buf.split_to(total).freeze();
        buf.advance(gap);
        Ok(Some(message))
    }
}

/// Splits the body `buf[body..body + body_len]` off the front of `buf` (no copy), dropping the
/// record's other bytes up to `end`.
fn take(buf: &mut BytesMut, body: usize, body_len: usize, end: usize) -> Bytes {
    buf.advance(body);
    let out = buf.split_to(body_len).freeze();
    buf.advance(end - body - body_len);
    out
}

impl std::fmt::Debug for RecordDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDecoder")
            .field("max_message", &self.max_message)
            .field("in_message", &self.in_message())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
