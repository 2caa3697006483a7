//! The read buffer of a stream connection's reader, and the filled buffers it recycles.
//!
//! Messages reach the application as slices of the read buffer (no copy), so a buffer stays
//! shared with the messages read into it until the application drops them, and the reader needs
//! a fresh buffer to read on. Allocating one each time made the allocator hand the pages of the
//! freed ones back to the kernel and fault them in again (two page faults and a `madvise` per
//! 64 KiB message on glibc). Instead the reader keeps the large buffers it filled (as many as
//! the connection's receive budget can hold messages in, see [`ReadBuffers::new`]) and reads on
//! the first one the application has let go of entirely.
//!
//! Memory stays bounded and follows traffic: a link waiting between frames holds no read buffer
//! (it waits on a stack buffer, see [`crate::framing::read_frame`]), small buffers are never
//! kept, and the spares are given back once the link has been idle for a while
//! ([`ReadBuffers::release_spares`]).

use std::collections::VecDeque;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::framing::{filled, read_into_empty, ReadFrameError, MIN_READ};

/// Capacity of a read buffer once the link is busy (a buffer that has grown past [`SMALL`]).
pub(crate) const BUSY: usize = 256 * 1024;
/// Buffers up to this size grow the ordinary way and are not kept as spares.
const SMALL: usize = 16 * 1024;
/// The most filled buffers kept for reuse (see [`ReadBuffers::new`]).
pub(crate) const MAX_SPARES: usize = 32;

/// The reader's buffer and its spares.
#[derive(Debug)]
pub(crate) struct ReadBuffers {
    /// Bytes read and not yet taken off by the decoder (at the front: a message under way).
    pub(crate) buf: BytesMut,
    /// Whether `buf`'s allocation is a busy buffer (at least [`BUSY`] bytes, worth keeping).
    busy: bool,
    /// Emptied handles of filled busy buffers, oldest first, each still shared with messages the
    /// application may hold; each is reused once it is the last handle.
    spares: VecDeque<BytesMut>,
    /// How many spares are kept.
    max_spares: usize,
}

impl ReadBuffers {
    /// A reader's buffers, starting with the bytes that arrived behind the handshake. The
    /// application may hold up to `recv_budget` bytes of delivered messages, so as many busy
    /// buffers may be out of reach at once; that many spares (and two more, at most
    /// [`MAX_SPARES`]) let the reader find a free one instead of allocating. Their memory is
    /// the receive budget's, held while the link is busy.
    pub(crate) fn new(leftover: BytesMut, recv_budget: usize) -> Self {
        Self {
            buf: leftover,
            busy: false,
            spares: VecDeque::new(),
            max_spares: (recv_budget.div_ceil(BUSY) + 2).min(MAX_SPARES),
        }
    }

    /// True while spare buffers are kept (for the idle timer).
    pub(crate) fn holds_spares(&self) -> bool {
        !self.spares.is_empty()
    }

    /// Gives the spares back (the link has been idle).
    pub(crate) fn release_spares(&mut self) {
        self.spares = VecDeque::new();
    }

    /// Reads once from `io`, appending to `buf`, with room for at least `needed` more bytes
    /// (what the next frame still needs) when a frame is under way. Cancel-safe: a read that
    /// has not completed has read nothing.
    pub(crate) async fn read<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        needed: usize,
    ) -> Result<(), ReadFrameError> {
        if self.buf.is_empty() {
            // Idle: a busy buffer is kept as a spare while the wait holds none.
            let Self {
                buf,
                busy,
                spares,
                max_spares,
            } = self;
            return read_into_empty(io, buf, |idle| {
                retire(spares, *max_spares, std::mem::take(busy), idle)
            })
            .await;
        }
        self.make_room(needed.max(MIN_READ));
        let read = io.read_buf(&mut self.buf).await;
        filled(read, &self.buf)
    }

    /// Makes room in `buf` for `want` more bytes, keeping its contents.
    fn make_room(&mut self, want: usize) {
        if self.buf.capacity() - self.buf.len() >= want {
            return;
        }
        let needed = self.buf.len() + want;
        if !self.busy && needed <= SMALL {
            // Small while idle (memory per connection): grow 2 KiB at a time.
            self.buf.reserve(want.max(2 * 1024));
            return;
        }
        // Busy. The buffer itself, if no message read into it is still held (compacted in
        // place, a copy of at most one frame) ...
        if self.buf.try_reclaim(want) {
            return;
        }
        // ... else the oldest spare the application has let go of, else a new buffer (twice
        // the size of a long message under way at the front, so its growth copies O(n) bytes).
        let capacity = needed.max(BUSY).max(2 * self.buf.len());
        let reusable = self
            .spares
            .iter_mut()
            .position(|spare| spare.try_reclaim(capacity));
        let mut next = match reusable {
            Some(i) => self.spares.remove(i).unwrap_or_default(),
            None => BytesMut::with_capacity(capacity),
        };
        next.extend_from_slice(&self.buf);
        let full = std::mem::replace(&mut self.buf, next);
        self.retire(full);
        self.busy = true;
    }

    /// Keeps an emptied handle of `buf`'s old allocation for reuse if it was a busy buffer.
    fn retire(&mut self, full: BytesMut) {
        let busy = std::mem::take(&mut self.busy);
        retire(&mut self.spares, self.max_spares, busy, full);
    }
}

/// Keeps an emptied handle of a busy buffer (`busy`) in `spares`; the oldest goes past `max`.
fn retire(spares: &mut VecDeque<BytesMut>, max: usize, busy: bool, mut full: BytesMut) {
    if !busy {
        return;
    }
    full.clear();
    if spares.len() >= max {
        spares.pop_front();
    }
    spares.push_back(full);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    /// Buffers whose receive budget fits four busy buffers (six spares).
    fn buffers() -> ReadBuffers {
        ReadBuffers::new(BytesMut::new(), 4 * BUSY)
    }

    fn busy() -> ReadBuffers {
        let mut b = buffers();
        b.buf.put_slice(&[1u8; 100]);
        b.make_room(BUSY);
        b
    }

    #[test]
    fn a_buffer_whose_messages_were_dropped_is_reused_without_allocating() {
        let mut b = busy();
        let base = b.buf.as_ptr();
        b.buf.put_bytes(2, BUSY - 100);
        // A message handed out and dropped: the buffer is reclaimed in place.
        drop(b.buf.split_to(BUSY - 10).freeze());
        b.make_room(4096);
        assert_eq!(b.buf.as_ptr(), base, "same allocation");
        assert_eq!(
            &b.buf[..],
            &[2u8; 10][..],
            "the partial bytes moved to the front"
        );
    }

    #[test]
    fn a_buffer_still_held_is_kept_as_a_spare_and_reused_once_let_go() {
        let mut b = busy();
        let first = b.buf.as_ptr();
        b.buf.put_bytes(2, BUSY - 100);
        let held = b.buf.split_to(BUSY - 10).freeze();
        b.make_room(4096);
        assert_ne!(
            b.buf.as_ptr(),
            first,
            "a new buffer while the message is held"
        );
        assert!(b.holds_spares());
        // Fill the second buffer, hold its message too, then let go of the first.
        let len = b.buf.capacity() - b.buf.len();
        b.buf.put_bytes(3, len);
        let held2 = b.buf.split_to(b.buf.len() - 5).freeze();
        drop(held);
        b.make_room(4096);
        assert_eq!(b.buf.as_ptr(), first, "the first buffer came back");
        assert_eq!(&b.buf[..], &[3u8; 5][..]);
        drop(held2);
    }

    #[test]
    fn spares_are_bounded_and_released() {
        let mut b = busy();
        let mut held = Vec::new();
        for _ in 0..20 {
            let len = b.buf.capacity() - b.buf.len();
            b.buf.put_bytes(4, len);
            held.push(b.buf.split_to(b.buf.len() - 1).freeze());
            b.make_room(4096);
        }
        assert_eq!(b.spares.len(), 6);
        b.release_spares();
        assert!(!b.holds_spares());
    }

    #[test]
    fn small_buffers_grow_in_small_steps_and_are_not_kept() {
        let mut b = buffers();
        b.buf.put_slice(&[1u8; 10]);
        b.make_room(MIN_READ);
        assert!(b.buf.capacity() < SMALL);
        let small = std::mem::take(&mut b.buf);
        b.retire(small);
        assert!(!b.holds_spares());
    }
}
