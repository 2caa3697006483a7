//! [`FrameReader`]: splits the frames (`u32` big-endian length, then the payload) off a QUIC
//! receive stream.
//!
//! Each wake-up takes up to [`READ_CHUNKS`] chunks quinn has reassembled (one connection lock
//! for all of them, no intermediate buffer), copies them once into a buffer sized for exactly
//! those bytes (or for the whole frame they start), and splits every whole frame off it without
//! copying. A frame's announced length
//! is checked against the maximum before any room is reserved for it (see
//! [`FrameDecoder::decode`]). Between bursts the reader holds no buffer at all: once every
//! buffered byte has been handed out, the buffer is dropped (the frames handed out keep only
//! their own bytes' allocation alive).

use bytes::{Bytes, BytesMut};
use quinn::{ReadError, RecvStream};

use bitcraps_transport_core::framing::{FrameDecoder, LENGTH_PREFIX_LEN};
use bitcraps_transport_core::ProtocolError;

/// Chunks taken from quinn per read (each at most one packet's payload, ~1.2-1.4 KB).
pub(crate) const READ_CHUNKS: usize = 32;

/// Why [`FrameReader::read_batch`] stopped.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    /// The remote finished its stream; `mid_frame` says whether part of a frame had arrived.
    Eof {
        /// Part of a frame was buffered when the stream ended.
        mid_frame: bool,
    },
    /// A frame broke the protocol (announced too large).
    Protocol(ProtocolError),
    /// quinn reported a failure (the stream reset, the connection lost, ...).
    Read(ReadError),
}

/// Reads frames off one receive stream.
#[derive(Debug)]
pub(crate) struct FrameReader {
    recv: RecvStream,
    decoder: FrameDecoder,
    /// Bytes read and not yet split into frames (at most one partial frame between reads).
    buf: BytesMut,
    /// Chunk slots for `read_chunks`; `next..end` are read from quinn and not yet consumed.
    chunks: Vec<Bytes>,
    next: usize,
    end: usize,
}

impl FrameReader {
    /// A reader of `recv` refusing frames longer than `max_frame` bytes.
    pub(crate) fn new(recv: RecvStream, max_frame: usize) -> Self {
        Self {
            recv,
            decoder: FrameDecoder::new(max_frame),
            buf: BytesMut::new(),
            chunks: vec![Bytes::new(); READ_CHUNKS],
            next: 0,
            end: 0,
        }
    }

    /// Waits until at least one whole frame is there, then appends every whole frame buffered
    /// to `batch`. On a protocol error, the frames before the bad one are in `batch` too.
    ///
    /// Cancel-safe: bytes read stay buffered for the next call, and frames are appended only
    /// right before returning.
    pub(crate) async fn read_batch(&mut self, batch: &mut Vec<Bytes>) -> Result<(), ReadEnd> {
        loop {
            self.split_frames(batch).map_err(ReadEnd::Protocol)?;
            if !batch.is_empty() {
                if self.buf.is_empty() {
                    // Nothing partial is kept: hold no buffer while idle.
                    self.buf = BytesMut::new();
                }
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Appends every whole frame buffered to `batch`, each a slice of one block split off the
    /// buffer (a reference count each, no copy, no per-frame buffer bookkeeping), then lets the
    /// decoder reserve room for the rest of a partial frame. A frame announced longer than the
    /// maximum ends the split with an error, the frames before it handed out.
    fn split_frames(&mut self, batch: &mut Vec<Bytes>) -> Result<(), ProtocolError> {
        let max = self.decoder.max_frame();
        let (mut end, mut refused) = (0, None);
        while let Some(len) = header_at(&self.buf, end) {
            if len > max {
                refused = Some(ProtocolError::FrameTooLarge {
                    len: u64::try_from(len).unwrap_or(u64::MAX),
                    max,
                });
                break;
            }
            let frame_end = end.saturating_add(LENGTH_PREFIX_LEN).saturating_add(len);
            if frame_end > self.buf.len() {
                break;
            }
            end = frame_end;
        }
        if end > 0 {
            let whole = self.buf.split_to(end).freeze();
            let mut at = 0;
            while let Some(len) = header_at(&whole, at).filter(|_| at < end) {
                let start = at + LENGTH_PREFIX_LEN;
                batch.push(whole.slice(start..start + len));
                at = start + len;
            }
        }
        if let Some(error) = refused {
            return Err(error);
        }
        // No whole frame is left: this only reserves room for a partial one (length checked).
        if let Some(frame) = self.decoder.decode(&mut self.buf)? {
            batch.push(frame.freeze());
        }
        Ok(())
    }

    /// Appends the chunks not yet consumed (reading the next ones from quinn if none are left)
    /// to the buffer: all of them when the buffer has no room left (room is made for them, or
    /// for the whole frame they start when that is larger), else only what fits the room that
    /// [`FrameDecoder::decode`] reserved for the rest of a partial frame, so a large frame's
    /// successor is not copied twice. A chunk that does not fit is split and its rest kept.
    async fn fill(&mut self) -> Result<(), ReadEnd> {
        if self.next == self.end {
            match self.recv.read_chunks(&mut self.chunks).await {
                Ok(Some(n)) => (self.next, self.end) = (0, n),
                Ok(None) => {
                    return Err(ReadEnd::Eof {
                        mid_frame: !self.buf.is_empty(),
                    })
                }
                Err(e) => return Err(ReadEnd::Read(e)),
            }
        }
        let pending = &mut self.chunks[self.next..self.end];
        if self.buf.capacity() == self.buf.len() {
            // Bounded by quinn's receive window: what the remote may send before we read.
            let available: usize = pending.iter().map(Bytes::len).sum();
            let frame = match (self.buf.is_empty(), pending.first()) {
                (true, Some(first)) => frame_len(first, self.decoder.max_frame()),
                _ => 0,
            };
            self.buf.reserve(available.max(frame));
        }
        for chunk in pending {
            if chunk.is_empty() {
                self.next += 1;
                continue;
            }
            let room = self.buf.capacity() - self.buf.len();
            if room == 0 {
                break;
            }
            if chunk.len() > room {
                self.buf.extend_from_slice(&chunk.split_to(room));
                break;
            }
            self.buf.extend_from_slice(chunk);
            *chunk = Bytes::new();
            self.next += 1;
        }
        Ok(())
    }
}

/// The whole size of the frame whose header starts `chunk` (0 when the header is not all there,
/// or announces more than `max_frame`: the decoder then refuses it, nothing reserved).
fn frame_len(chunk: &[u8], max_frame: usize) -> usize {
    match chunk {
        [a, b, c, d, ..] => match usize::try_from(u32::from_be_bytes([*a, *b, *c, *d])) {
            Ok(len) if len <= max_frame => LENGTH_PREFIX_LEN + len,
            _ => 0,
        },
        _ => 0,
    }
}

/// The length announced by the frame header at `at` in `buf`, if all four bytes are there.
fn header_at(buf: &[u8], at: usize) -> Option<usize> {
    let header = buf.get(at..at.checked_add(LENGTH_PREFIX_LEN)?)?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    Some(usize::try_from(len).unwrap_or(usize::MAX))
}
