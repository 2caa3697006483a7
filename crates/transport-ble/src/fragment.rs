//! Sans-IO fragmentation of messages into ATT payloads, and capped reassembly.
//!
//! No tokio, no locks, no clock reads: the caller passes `now`.
//!
//! # Wire format
//!
//! Every fragment is one ATT payload (one write command or one notification):
//!
//! ```text
//! offset  size  field
//! 0       2     message id      u16 big-endian, per sender, wrapping 65535 -> 0
//! 2       2     fragment index  u16 big-endian, 0..count
//! 4       2     fragment count  u16 big-endian, 1..=65535
//! 6       n     chunk           n <= max_payload - 6 (= MTU - 3 - 6); only the last may be short
//! ```
//!
//! A zero-length message is one fragment (count 1) with an empty chunk. In a message of more
//! than one fragment, every chunk is non-empty.
//!
//! Worked example, a 30-byte message `00 01 .. 1d` with id 7 at MTU 23 (chunk 23 - 3 - 6 = 14):
//!
//! ```text
//! 0007 0000 0003  000102030405060708090a0b0c0d   (20 bytes)
//! 0007 0001 0003  0e0f101112131415161718191a1b   (20 bytes)
//! 0007 0002 0003  1c1d                           ( 8 bytes)
//! ```

mod reassembler;
#[cfg(test)]
mod tests;

use bytes::{BufMut, Bytes, BytesMut};

pub use reassembler::{DropStats, Reassembler, ReassemblerConfig, ReassemblerStats};

/// Bytes of fragment header.
pub const HEADER_LEN: usize = 6;

/// The chunk size for a link MTU: `mtu - 3 (ATT header) - 6 (fragment header)`, or 0 if the
/// MTU is too small to carry anything.
pub const fn chunk_len_for_mtu(mtu: u16) -> usize {
    (mtu as usize).saturating_sub(crate::link::ATT_HEADER_LEN as usize + HEADER_LEN)
}

/// Errors of fragmentation and reassembly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FragmentError {
    /// The link's payload cannot hold a header and at least one byte of chunk.
    #[error("a payload of {max_payload} bytes cannot carry a fragment (needs at least 7)")]
    PayloadTooSmall {
        /// The link's maximum ATT payload.
        max_payload: usize,
    },
    /// The message needs more than the 65535 fragments the count field can express, or more
    /// than the configured cap.
    #[error("message of {len} bytes needs more than {max_fragments} fragments")]
    MessageTooLong {
        /// The message's length.
        len: usize,
        /// The largest fragment count allowed.
        max_fragments: usize,
    },
    /// Shorter than the 6-byte header.
    #[error("fragment of {len} bytes is shorter than the 6-byte header")]
    Truncated {
        /// The fragment's length.
        len: usize,
    },
    /// A fragment count of zero.
    #[error("fragment count of zero in message {message_id}")]
    ZeroCount {
        /// The message id.
        message_id: u16,
    },
    /// A fragment index not below the fragment count.
    #[error("fragment index {index} not below count {count} in message {message_id}")]
    IndexOutOfRange {
        /// The message id.
        message_id: u16,
        /// The fragment index.
        index: u16,
        /// The fragment count.
        count: u16,
    },
    /// An empty chunk in a message of more than one fragment.
    #[error("empty chunk at index {index} of message {message_id}")]
    EmptyChunk {
        /// The message id.
        message_id: u16,
        /// The fragment index.
        index: u16,
    },
    /// A fragment whose count differs from earlier fragments of the same message; the partial
    /// message is dropped.
    #[error("message {message_id}: fragment count {got} differs from {expected}")]
    InconsistentCount {
        /// The message id.
        message_id: u16,
        /// The count seen first.
        expected: u16,
        /// The count in this fragment.
        got: u16,
    },
    /// A fragment count over the reassembler's cap.
    #[error("message {message_id} announces {count} fragments, over the cap of {max}")]
    TooManyFragments {
        /// The message id.
        message_id: u16,
        /// The announced count.
        count: u16,
        /// The cap.
        max: u16,
    },
    /// The message grew past the reassembler's byte cap; the partial message is dropped.
    #[error("message {message_id} exceeds the cap of {max} bytes")]
    MessageTooLarge {
        /// The message id.
        message_id: u16,
        /// The cap.
        max: usize,
    },
}

/// The 6-byte fragment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Identifies the message within the sender's stream (wrapping).
    pub message_id: u16,
    /// This fragment's position, `0..count`.
    pub index: u16,
    /// How many fragments the message has, at least 1.
    pub count: u16,
}

impl FragmentHeader {
    /// The big-endian encoding.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let [a, b] = self.message_id.to_be_bytes();
        let [c, d] = self.index.to_be_bytes();
        let [e, f] = self.count.to_be_bytes();
        [a, b, c, d, e, f]
    }

    /// Splits a fragment into its header and chunk, checking the header's own consistency
    /// (count >= 1, index < count, non-empty chunk when count > 1).
    pub fn parse(fragment: &[u8]) -> Result<(Self, &[u8]), FragmentError> {
        let (head, chunk) = match fragment.split_first_chunk::<HEADER_LEN>() {
            Some(split) => split,
            None => {
                return Err(FragmentError::Truncated {
                    len: fragment.len(),
                })
            }
        };
        let header = Self {
            message_id: u16::from_be_bytes([head[0], head[1]]),
            index: u16::from_be_bytes([head[2], head[3]]),
            count: u16::from_be_bytes([head[4], head[5]]),
        };
        if header.count == 0 {
            return Err(FragmentError::ZeroCount {
                message_id: header.message_id,
            });
        }
        if header.index >= header.count {
            return Err(FragmentError::IndexOutOfRange {
                message_id: header.message_id,
                index: header.index,
                count: header.count,
            });
        }
        if header.count > 1 && chunk.is_empty() {
            return Err(FragmentError::EmptyChunk {
                message_id: header.message_id,
                index: header.index,
            });
        }
        Ok((header, chunk))
    }
}

/// Counters of a [`Fragmenter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragmenterStats {
    /// Messages fragmented.
    pub messages_out: u64,
    /// Fragments produced.
    pub fragments_out: u64,
    /// Message bytes fragmented (excluding headers).
    pub bytes_out: u64,
}

/// Splits messages into fragments for one sender's stream.
#[derive(Clone, Debug, Default)]
pub struct Fragmenter {
    next_id: u16,
    stats: FragmenterStats,
}

impl Fragmenter {
    /// A fragmenter whose first message id is 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fragmenter whose first message id is `id` (tests of wrapping, or continuing a stream).
    pub fn with_first_id(id: u16) -> Self {
        Self {
            next_id: id,
            stats: FragmenterStats::default(),
        }
    }

    /// The id the next message will get.
    pub fn next_id(&self) -> u16 {
        self.next_id
    }

    /// Counters so far.
    pub fn stats(&self) -> FragmenterStats {
        self.stats
    }

    /// The fragments of `message` for a link whose largest ATT payload is `max_payload`
    /// (normally MTU - 3). Fragments are produced lazily, in index order; each is one payload.
    pub fn fragment(
        &mut self,
        message: Bytes,
        max_payload: usize,
    ) -> Result<Fragments, FragmentError> {
        let chunk = max_payload.saturating_sub(HEADER_LEN);
        if chunk == 0 {
            return Err(FragmentError::PayloadTooSmall { max_payload });
        }
        let count = message.len().div_ceil(chunk).max(1);
        let count = u16::try_from(count).map_err(|_| FragmentError::MessageTooLong {
            len: message.len(),
            max_fragments: usize::from(u16::MAX),
        })?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.stats.messages_out += 1;
        self.stats.fragments_out += u64::from(count);
        self.stats.bytes_out += message.len() as u64;
        Ok(Fragments {
            message,
            chunk,
            id,
            count,
            index: 0,
        })
    }

    /// [`fragment`](Self::fragment) for a link MTU (max payload = MTU - 3).
    pub fn fragment_for_mtu(
        &mut self,
        message: Bytes,
        mtu: u16,
    ) -> Result<Fragments, FragmentError> {
        let max_payload = usize::from(mtu).saturating_sub(usize::from(crate::link::ATT_HEADER_LEN));
        self.fragment(message, max_payload)
    }
}

/// The fragments of one message, produced lazily in index order.
#[derive(Clone, Debug)]
pub struct Fragments {
    message: Bytes,
    chunk: usize,
    id: u16,
    count: u16,
    index: u16,
}

impl Fragments {
    /// The message id all these fragments carry.
    pub fn message_id(&self) -> u16 {
        self.id
    }

    /// How many fragments the message has in all.
    pub fn count(&self) -> u16 {
        self.count
    }
}

impl Iterator for Fragments {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.index >= self.count {
            return None;
        }
        let start = usize::from(self.index) * self.chunk;
        let end = (start + self.chunk).min(self.message.len());
        let body = self.message.slice(start.min(end)..end);
        let header = FragmentHeader {
            message_id: self.id,
            index: self.index,
            count: self.count,
        };
        let mut out = BytesMut::with_capacity(HEADER_LEN + body.len());
        out.put_slice(&header.encode());
        out.put_slice(&body);
        self.index += 1;
        Some(out.freeze())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::from(self.count - self.index);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Fragments {}
