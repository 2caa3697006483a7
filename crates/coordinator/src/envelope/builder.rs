//! [`FrameBuilder`]: envelopes written back to back into one transport message, up to a size
//! limit, in a buffer whose spare capacity is reused from message to message.

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    CloseCode, Hello, LaneState, ACK_LEN, CLOSE_LEN, DATA_HEADER, HELLO_LEN, PROBE_LEN, TYPE_ACK,
    TYPE_CLOSE, TYPE_DATA, TYPE_DATA_NEXT, TYPE_HELLO, VERSION,
};

/// Builds one transport message out of envelopes, up to a size limit.
#[derive(Debug)]
pub struct FrameBuilder {
    buf: BytesMut,
    limit: usize,
}

impl FrameBuilder {
    /// A builder whose frames never exceed `limit` bytes, writing into `buf` (its spare
    /// capacity is reused from frame to frame).
    pub fn new(mut buf: BytesMut, limit: usize) -> Self {
        buf.clear();
        Self { buf, limit }
    }

    /// Raises (or lowers) the size limit; bytes already written stay.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes still free under the limit.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.buf.len())
    }

    fn reserve(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n {
            self.buf.reserve(n.max(16 * 1024).min(self.limit.max(n)));
        }
    }

    /// Appends a `HELLO` (false if it does not fit).
    pub fn hello(&mut self, h: &Hello) -> bool {
        if self.room() < HELLO_LEN {
            return false;
        }
        self.reserve(HELLO_LEN);
        self.buf.put_u8(TYPE_HELLO);
        self.buf.put_u8(VERSION);
        self.buf.put_u8(h.flags);
        self.buf.put_u64(h.session);
        self.buf.put_u32(h.window_messages);
        self.buf.put_u32(h.window_bytes);
        self.buf.put_u64(h.your_session);
        for l in &h.lanes {
            self.buf.put_u64(l.delivered);
            self.buf.put_u64(l.received);
        }
        true
    }

    /// Appends a `DATA` with its payload inline (false if it does not fit).
    pub fn data(&mut self, lane: u8, seq: u64, payload: &[u8]) -> bool {
        let n = DATA_HEADER + payload.len();
        if self.room() < n {
            return false;
        }
        self.reserve(n);
        self.buf.put_u8(TYPE_DATA);
        self.buf.put_u8(lane);
        self.buf.put_u64(seq);
        self.buf.put_u32(payload.len() as u32);
        self.buf.put_slice(payload);
        true
    }

    /// Appends a `DATA_NEXT` header (false if it does not fit). Nothing may follow it.
    pub fn data_next(&mut self, lane: u8, seq: u64, len: u32) -> bool {
        if self.room() < DATA_HEADER {
            return false;
        }
        self.reserve(DATA_HEADER);
        self.buf.put_u8(TYPE_DATA_NEXT);
        self.buf.put_u8(lane);
        self.buf.put_u64(seq);
        self.buf.put_u32(len);
        true
    }

    /// Appends an `ACK` (false if it does not fit).
    pub fn ack(&mut self, lane: u8, state: LaneState) -> bool {
        if self.room() < ACK_LEN {
            return false;
        }
        self.reserve(ACK_LEN);
        self.buf.put_u8(TYPE_ACK);
        self.buf.put_u8(lane);
        self.buf.put_u64(state.received);
        self.buf.put_u64(state.delivered);
        true
    }

    /// Appends a `PING` or `PONG` (`kind` is [`TYPE_PING`] or [`TYPE_PONG`]).
    pub fn probe(&mut self, kind: u8, nonce: u64) -> bool {
        if self.room() < PROBE_LEN {
            return false;
        }
        self.reserve(PROBE_LEN);
        self.buf.put_u8(kind);
        self.buf.put_u64(nonce);
        true
    }

    /// Appends a `CLOSE`.
    pub fn close(&mut self, code: CloseCode) -> bool {
        if self.room() < CLOSE_LEN {
            return false;
        }
        self.reserve(CLOSE_LEN);
        self.buf.put_u8(TYPE_CLOSE);
        self.buf.put_u8(code.byte());
        true
    }

    /// The transport message, and the buffer to reuse for the next one.
    pub fn finish(mut self) -> (Bytes, BytesMut) {
        let frame = self.buf.split().freeze();
        (frame, self.buf)
    }
}
