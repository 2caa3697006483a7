//! Length-prefixed framing for byte streams: a `u32` big-endian length, then that many bytes.
//!
//! The decoder checks the announced length against its maximum before it reserves a single
//! byte for the frame, so a hostile 4 GiB prefix costs nothing but an error.

use bytes::{Buf, BufMut, BytesMut};
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::ProtocolError;

/// Bytes in a frame's length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Appends one frame (`u32` big-endian length, then `payload`) to `out`.
///
/// # Panics
/// If `payload` is longer than `u32::MAX` bytes; callers bound payloads far below that.
pub fn encode_frame(payload: &[u8], out: &mut BytesMut) {
    let len = u32::try_from(payload.len()).expect("frame payload fits a u32 length");
    out.reserve(LENGTH_PREFIX_LEN + payload.len());
    out.put_u32(len);
    out.put_slice(payload);
}

/// Splits frames off the front of a receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }

    /// The largest frame payload accepted.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Takes one whole frame's payload off the front of `buf`, `Ok(None)` if `buf` does not yet
    /// hold a whole frame. When the frame is incomplete, reserves room for the rest of it (never
    /// more than the maximum) so the next read can complete it.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<BytesMut>, ProtocolError> {
        match self.peek_at(buf, 0)? {
            Peek::Whole(len) => {
                buf.advance(LENGTH_PREFIX_LEN);
                Ok(Some(buf.split_to(len)))
            }
            Peek::Short(missing) => {
                if buf.len() >= LENGTH_PREFIX_LEN {
                    buf.reserve(missing);
                }
                Ok(None)
            }
        }
    }

    /// Looks at the frame whose length prefix starts at `at` in `buf` without taking anything
    /// off `buf`, so a caller that keeps earlier bytes at the front (a message being
    /// reassembled) reads the next frame behind them. A length over the maximum is an error
    /// before anything is reserved.
    pub fn peek_at(&self, buf: &[u8], at: usize) -> Result<Peek, ProtocolError> {
        let have = buf.len().saturating_sub(at);
        if have < LENGTH_PREFIX_LEN {
            return Ok(Peek::Short(LENGTH_PREFIX_LEN - have));
        }
        let len = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
        if len_usize > self.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                len: u64::from(len),
                max: self.max_frame,
            });
        }
        let total = LENGTH_PREFIX_LEN + len_usize;
        if have < total {
            return Ok(Peek::Short(total - have));
        }
        Ok(Peek::Whole(len_usize))
    }
}

/// What [`FrameDecoder::peek_at`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// A whole frame with a payload of this many bytes.
    Whole(usize),
    /// This many more bytes are needed before the frame is whole (its length prefix first,
    /// when even that is incomplete; within the maximum once the prefix is known).
    Short(usize),
}

/// Why [`read_frame`] stopped.
#[derive(Debug)]
pub enum ReadFrameError {
    /// The stream ended; `mid_frame` says whether part of a frame had arrived.
    Eof {
        /// Part of a frame was buffered when the stream ended.
        mid_frame: bool,
    },
    /// The frame broke the protocol (too large).
    Protocol(ProtocolError),
    /// Reading failed.
    Io(std::io::Error),
}

/// Bytes read at a time, through a buffer on the stack, while no frame is under way: a link
/// waiting for its next frame holds no read buffer at all.
pub const IDLE_READ: usize = 2 * 1024;

/// Reads from `io` into `buf` until one whole frame is there, and returns its payload.
///
/// Between frames (`buf` empty) the wait holds no heap buffer: if nothing is waiting to be read
/// into the capacity `buf` still has, `buf` is released and the read goes through a stack buffer
/// of [`IDLE_READ`] bytes, whose bytes are then copied into a buffer of just their size. Once a
/// frame is under way, reads go straight into `buf`, which grows lazily: by the rest of the frame
/// when its length is known, else 2 KiB at a time while small, 64 KiB at a time once past 16 KiB
/// (a busy link).
///
/// Cancel-safe: bytes already read stay in `buf` for the next call.
pub async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    decoder: &FrameDecoder,
) -> Result<BytesMut, ReadFrameError> {
    loop {
        if let Some(frame) = decoder.decode(buf).map_err(ReadFrameError::Protocol)? {
            return Ok(frame);
        }
        read_more(io, buf).await?;
    }
}

/// Reads once from `io`, appending to `buf`: an empty `buf` waits holding no heap buffer (see
/// [`read_into_empty`]), a busy one grows lazily. Cancel-safe: a read that has not completed
/// has read nothing.
async fn read_more<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
) -> Result<(), ReadFrameError> {
    if buf.is_empty() {
        return read_into_empty(io, buf, drop).await;
    }
    if buf.capacity() - buf.len() < MIN_READ {
        // Small while idle (memory per connection), larger once traffic shows it is busy:
        // a buffer that has grown past 16 KiB reads 64 KiB at a time.
        let chunk = if buf.capacity() >= 16 * 1024 {
            64 * 1024
        } else {
            2 * 1024
        };
        buf.reserve(chunk);
    }
    let read = io.read_buf(buf).await;
    filled(read, buf)
}

/// Reads once into the empty `buf`: what is already waiting goes into the capacity it has, if
/// any; otherwise `buf` is handed to `give_up` and the wait holds no heap buffer (it reads on
/// the stack, see [`read_on_stack`]). Cancel-safe.
pub(crate) async fn read_into_empty<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    give_up: impl FnOnce(BytesMut),
) -> Result<(), ReadFrameError> {
    debug_assert!(buf.is_empty());
    if buf.capacity() >= MIN_READ {
        // Busy link: try the read into the capacity there is, without waiting
        // (`read_buf` is cancel-safe: if nothing is waiting it has read nothing).
        let ready = tokio::select! {
            biased;
            read = io.read_buf(buf) => Some(read),
            () = std::future::ready(()) => None,
        };
        if let Some(read) = ready {
            return filled(read, buf);
        }
    }
    // Idle: wait holding no buffer.
    give_up(std::mem::take(buf));
    let read = read_on_stack(io, buf).await;
    filled(read, buf)
}

/// Spare capacity under which `buf` is grown before a read.
pub(crate) const MIN_READ: usize = 512;

/// Reads once into a stack buffer and appends what was read to `buf` (allocated to fit). The
/// stack buffer lives only while the read is polled, so a pending read holds no memory; a read
/// that is pending has read nothing (the `AsyncRead` contract), so this is cancel-safe.
async fn read_on_stack<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); IDLE_READ];
        let mut read = ReadBuf::uninit(&mut stack);
        std::task::ready!(Pin::new(&mut *io).poll_read(cx, &mut read))?;
        buf.extend_from_slice(read.filled());
        Poll::Ready(Ok(read.filled().len()))
    })
    .await
}

pub(crate) fn filled(read: std::io::Result<usize>, buf: &BytesMut) -> Result<(), ReadFrameError> {
    match read {
        Ok(0) => Err(ReadFrameError::Eof {
            mid_frame: !buf.is_empty(),
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(ReadFrameError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split_correctly() {
        let mut buf = BytesMut::new();
        encode_frame(b"", &mut buf);
        encode_frame(b"dice", &mut buf);
        let d = FrameDecoder::new(16);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().as_ref(), b"");
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().as_ref(), b"dice");
        assert!(d.decode(&mut buf).unwrap().is_none());
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let d = FrameDecoder::new(16);
        let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
        assert!(d.decode(&mut buf).unwrap().is_none());
        buf.put_slice(&[5, b'a', b'b']);
        assert!(d.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= 9);
        buf.put_slice(b"cde");
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().as_ref(), b"abcde");
    }

    #[test]
    fn the_maximum_is_accepted_and_one_more_refused_before_allocating() {
        let d = FrameDecoder::new(16);
        let mut ok = BytesMut::new();
        encode_frame(&[7u8; 16], &mut ok);
        assert_eq!(d.decode(&mut ok).unwrap().unwrap().len(), 16);
        let mut huge = BytesMut::from(&[0xFFu8, 0xFF, 0xFF, 0xFF][..]);
        let cap_before = huge.capacity();
        assert_eq!(
            d.decode(&mut huge),
            Err(ProtocolError::FrameTooLarge {
                len: u64::from(u32::MAX),
                max: 16
            })
        );
        assert_eq!(
            huge.capacity(),
            cap_before,
            "nothing reserved for a refused frame"
        );
        let mut over = BytesMut::from(&[0u8, 0, 0, 17][..]);
        assert!(d.decode(&mut over).is_err());
    }

    #[tokio::test]
    async fn an_idle_link_releases_a_large_empty_read_buffer() {
        let d = FrameDecoder::new(64 * 1024);
        let (mut a, mut b) = tokio::io::duplex(256 * 1024);
        let mut buf = BytesMut::with_capacity(128 * 1024);
        let mut wire = BytesMut::new();
        encode_frame(&[1u8; 40_000], &mut wire);
        tokio::io::AsyncWriteExt::write_all(&mut a, &wire)
            .await
            .unwrap();
        assert_eq!(
            read_frame(&mut b, &mut buf, &d).await.unwrap().len(),
            40_000
        );
        // Nothing is waiting now: the next read drops the big buffer, then waits on a small one.
        let next = tokio::spawn(async move {
            let f = read_frame(&mut b, &mut buf, &d).await.unwrap();
            (f, buf.capacity())
        });
        tokio::task::yield_now().await;
        wire.clear();
        encode_frame(b"ping", &mut wire);
        tokio::io::AsyncWriteExt::write_all(&mut a, &wire)
            .await
            .unwrap();
        let (frame, capacity) = next.await.unwrap();
        assert_eq!(frame.as_ref(), b"ping");
        assert!(capacity <= IDLE_READ, "capacity {capacity}");
    }

    #[tokio::test]
    async fn a_link_waiting_between_frames_holds_no_read_buffer() {
        let d = FrameDecoder::new(64 * 1024);
        let (mut a, mut b) = tokio::io::duplex(1024);
        let mut buf = BytesMut::with_capacity(2048);
        // Nothing waiting: a read that is polled once and cancelled leaves no buffer behind.
        tokio::select! {
            biased;
            _ = read_frame(&mut b, &mut buf, &d) => panic!("nothing was sent"),
            () = std::future::ready(()) => {}
        }
        assert_eq!(buf.capacity(), 0);
        // A frame longer than the stack read still arrives whole.
        let mut wire = BytesMut::new();
        encode_frame(&[9u8; 3 * IDLE_READ], &mut wire);
        let write = tokio::spawn(async move {
            tokio::io::AsyncWriteExt::write_all(&mut a, &wire)
                .await
                .unwrap();
            a
        });
        let frame = read_frame(&mut b, &mut buf, &d).await.unwrap();
        assert_eq!(frame.as_ref(), &[9u8; 3 * IDLE_READ][..]);
        drop(write.await.unwrap());
    }

    #[tokio::test]
    async fn read_frame_reports_eof_and_mid_frame_eof() {
        let d = FrameDecoder::new(64);
        let data: &[u8] = &[0, 0, 0, 2, b'h', b'i', 0, 0];
        let mut io = data;
        let mut buf = BytesMut::new();
        assert_eq!(
            read_frame(&mut io, &mut buf, &d).await.unwrap().as_ref(),
            b"hi"
        );
        assert!(matches!(
            read_frame(&mut io, &mut buf, &d).await,
            Err(ReadFrameError::Eof { mid_frame: true })
        ));
        let mut empty: &[u8] = &[];
        let mut buf = BytesMut::new();
        assert!(matches!(
            read_frame(&mut empty, &mut buf, &d).await,
            Err(ReadFrameError::Eof { mid_frame: false })
        ));
    }
}
