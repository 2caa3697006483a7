//! [`BleStream`]: an ordered byte stream (`AsyncRead + AsyncWrite`) over one [`BleLink`],
//! for the core's Noise channel (which does its own u32 length-prefix framing) to run on.
//!
//! # Mapping
//!
//! * Each `poll_write` takes up to [`BleStreamConfig::max_write_message`] bytes and makes them
//!   one message, fragmented to the link's payload size. Like `BufWriter`, accepted bytes may
//!   still be on their way into the link's queue: `poll_flush` (or the next write) pushes them
//!   on. The next write waits until the previous message is fully queued, so memory is
//!   bounded by one message plus the link's queues, and a stalled reader holds the writer back.
//!   Write a length prefix and its frame in one call (or through a `BufWriter`) to put them in
//!   one message. As with `BufWriter`, flush (or shut down) before dropping the stream, or the
//!   last write may be lost.
//! * Received fragments are reassembled; each message's bytes are read out in order.
//! * **End of stream** is a zero-length message (one fragment, count 1, no chunk: the six bytes
//!   `id id 00 00 00 01`). `poll_shutdown` sends it; the reader then sees EOF. A data message is
//!   never empty (empty writes send nothing).
//! * Half-close works: after `shutdown` the stream can still read. The link closes
//!   (gracefully, queued data first) as soon as both directions have ended, or when the stream
//!   (both halves, if split) is dropped.
//! * A malformed fragment or a lost message (the link is ordered and reliable, so any
//!   reassembly drop means the peer misbehaves) is `InvalidData`, the reassembly state is
//!   freed and the link is aborted. The link going down without an end-of-stream is
//!   `ConnectionAborted` (or `BrokenPipe` when closed).
//! * [`BleStream::into_split`] gives independent [`BleReadHalf`] and [`BleWriteHalf`] (the
//!   core's connection driver reads and writes concurrently): they share no lock, only an
//!   atomic "which direction has ended" word and lock-free [`StreamCounters`].

mod counters;
mod read;
mod write;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use counters::{StreamCounters, StreamStats};
pub use read::BleReadHalf;
pub use write::BleWriteHalf;

use crate::fragment::{FragmenterStats, Reassembler, ReassemblerConfig, ReassemblerStats};
use crate::link::{BleLink, LinkDownReason, LinkInfo};

/// Settings of a [`BleStream`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BleStreamConfig {
    /// Most bytes one write turns into one message. Must not exceed the peer's reassembly cap.
    pub max_write_message: usize,
    /// Caps of the receiving side.
    pub reassembly: ReassemblerConfig,
}

impl Default for BleStreamConfig {
    /// 4 KiB messages (292 fragments at MTU 23, 18 at MTU 247), default reassembly caps
    /// (64 KiB per message).
    fn default() -> Self {
        Self {
            max_write_message: 4096,
            reassembly: ReassemblerConfig::default(),
        }
    }
}

/// Bit set in [`Ends`] once our end of stream is queued.
const WRITE_ENDED: u8 = 1;
/// Bit set in [`Ends`] once the remote's end of stream arrived.
const READ_ENDED: u8 = 2;

/// Which directions of a stream have ended; whichever half ends second closes the link.
#[derive(Debug, Default)]
struct Ends(AtomicU8);

impl Ends {
    /// Marks `bit`; true if the other direction had already ended (so this caller closes).
    fn set(&self, bit: u8) -> bool {
        let before = self.0.fetch_or(bit, Ordering::AcqRel);
        before | bit == WRITE_ENDED | READ_ENDED && before & bit == 0
    }
}

/// An ordered byte stream over one BLE link. See the [module docs](self).
#[derive(Debug)]
pub struct BleStream {
    read: BleReadHalf,
    write: BleWriteHalf,
    counters: Arc<StreamCounters>,
}

impl BleStream {
    /// A stream over `link` with default settings.
    pub fn new(link: BleLink) -> Self {
        Self::with_config(link, BleStreamConfig::default())
    }

    /// A stream over `link`.
    pub fn with_config(link: BleLink, config: BleStreamConfig) -> Self {
        let (sender, receiver) = link.into_split();
        let ends = Arc::new(Ends::default());
        let counters = Arc::new(StreamCounters::default());
        let read = BleReadHalf::new(
            receiver,
            sender.clone(),
            Reassembler::new(config.reassembly),
            ends.clone(),
            counters.clone(),
        );
        let write = BleWriteHalf::new(
            sender.into_sink(),
            config.max_write_message,
            ends,
            counters.clone(),
        );
        Self {
            read,
            write,
            counters,
        }
    }

    /// The link's facts.
    pub fn info(&self) -> &LinkInfo {
        self.read.info()
    }

    /// Fragments and messages sent.
    pub fn fragmenter_stats(&self) -> FragmenterStats {
        self.write.fragmenter_stats()
    }

    /// Fragments and messages received, and reassembly drops by reason.
    pub fn reassembler_stats(&self) -> ReassemblerStats {
        self.read.reassembler_stats()
    }

    /// The stream's lock-free counters; they stay readable after the stream is split or moved
    /// into a connection driver.
    pub fn counters(&self) -> Arc<StreamCounters> {
        self.counters.clone()
    }

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.read.down_reason()
    }

    /// Resolves when the link goes down.
    pub async fn link_down(&self) -> LinkDownReason {
        self.read.link_down().await
    }

    /// Splits into independent reading and writing halves. The link closes gracefully once
    /// both directions have ended or both halves are dropped.
    pub fn into_split(self) -> (BleReadHalf, BleWriteHalf) {
        (self.read, self.write)
    }
}

impl AsyncRead for BleStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl AsyncWrite for BleStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::{Ends, READ_ENDED, WRITE_ENDED};

    #[test]
    fn exactly_the_second_end_closes() {
        let ends = Ends::default();
        assert!(!ends.set(WRITE_ENDED));
        assert!(ends.set(READ_ENDED));
        assert!(!ends.set(READ_ENDED));
        let ends = Ends::default();
        assert!(!ends.set(READ_ENDED));
        assert!(ends.set(WRITE_ENDED));
    }
}
