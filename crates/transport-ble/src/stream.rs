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
//!   is dropped.
//! * A malformed fragment or a lost message (the link is ordered and reliable, so any
//!   reassembly drop means the peer misbehaves) is `InvalidData`, and the link is aborted.
//!   The link going down without an end-of-stream is `ConnectionAborted` (or `BrokenPipe`
//!   when closed).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::fragment::{
    FragmentError, Fragmenter, FragmenterStats, Fragments, Reassembler, ReassemblerConfig,
    ReassemblerStats,
};
use crate::link::{BleLink, LinkDownReason, LinkError, LinkInfo, LinkReceiver, LinkSink};

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

/// An ordered byte stream over one BLE link. See the [module docs](self).
#[derive(Debug)]
pub struct BleStream {
    info: LinkInfo,
    sink: LinkSink,
    receiver: LinkReceiver,
    fragmenter: Fragmenter,
    reassembler: Reassembler,
    max_write: usize,
    pending: Option<Fragments>,
    eos_sent: bool,
    eos_received: bool,
    close_queued: bool,
    read_buf: Bytes,
    read_error: Option<(io::ErrorKind, String)>,
}

fn io_error(err: LinkError) -> io::Error {
    let kind = match &err {
        LinkError::Closing
        | LinkError::LinkDown(LinkDownReason::LocalClose | LinkDownReason::RemoteClose) => {
            io::ErrorKind::BrokenPipe
        }
        LinkError::LinkDown(_) => io::ErrorKind::ConnectionAborted,
        LinkError::PayloadTooLarge { .. } => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err)
}

fn fragment_error(err: FragmentError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl BleStream {
    /// A stream over `link` with default settings.
    pub fn new(link: BleLink) -> Self {
        Self::with_config(link, BleStreamConfig::default())
    }

    /// A stream over `link`.
    pub fn with_config(link: BleLink, config: BleStreamConfig) -> Self {
        let info = link.info().clone();
        let (sender, receiver) = link.into_split();
        Self {
            info,
            sink: sender.into_sink(),
            receiver,
            fragmenter: Fragmenter::new(),
            reassembler: Reassembler::new(config.reassembly),
            max_write: config.max_write_message.max(1),
            pending: None,
            eos_sent: false,
            eos_received: false,
            close_queued: false,
            read_buf: Bytes::new(),
            read_error: None,
        }
    }

    /// The link's facts.
    pub fn info(&self) -> &LinkInfo {
        &self.info
    }

    /// Fragments and messages sent.
    pub fn fragmenter_stats(&self) -> FragmenterStats {
        self.fragmenter.stats()
    }

    /// Fragments and messages received, and reassembly drops by reason.
    pub fn reassembler_stats(&self) -> ReassemblerStats {
        self.reassembler.stats()
    }

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.receiver.down_reason()
    }

    /// Resolves when the link goes down.
    pub async fn link_down(&self) -> LinkDownReason {
        self.receiver.down().await
    }

    /// Pushes the pending message's fragments into the link's queue.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(fragments) = self.pending.as_mut() {
            if fragments.len() == 0 {
                self.pending = None;
                break;
            }
            ready!(self.sink.poll_ready(cx)).map_err(io_error)?;
            if let Some(fragment) = fragments.next() {
                self.sink.start_send(fragment).map_err(io_error)?;
            }
        }
        Poll::Ready(Ok(()))
    }

    fn start_message(&mut self, message: Bytes) -> io::Result<()> {
        let fragments = self
            .fragmenter
            .fragment(message, self.info.max_payload())
            .map_err(fragment_error)?;
        self.pending = Some(fragments);
        Ok(())
    }

    /// Once both directions have ended and our end-of-stream is queued, closes the link
    /// gracefully (best effort: needs one unit of write credit).
    fn poll_close_link(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.close_queued || !self.eos_sent || !self.eos_received || self.pending.is_some() {
            return Poll::Ready(Ok(()));
        }
        match ready!(self.sink.poll_ready(cx)) {
            Ok(()) => {
                self.close_queued = true;
                // A failure means the link is already going down: nothing left to close.
                let _ = self.sink.start_close();
            }
            Err(_) => self.close_queued = true,
        }
        Poll::Ready(Ok(()))
    }

    fn fail_read(&mut self, kind: io::ErrorKind, err: impl std::error::Error) -> io::Error {
        let text = err.to_string();
        self.read_error = Some((kind, text.clone()));
        io::Error::new(kind, text)
    }
}

impl AsyncRead for BleStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !this.read_buf.is_empty() {
                let n = this.read_buf.len().min(buf.remaining());
                buf.put_slice(&this.read_buf[..n]);
                this.read_buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eos_received {
                return Poll::Ready(Ok(()));
            }
            if let Some((kind, text)) = &this.read_error {
                return Poll::Ready(Err(io::Error::new(*kind, text.clone())));
            }
            let Some(fragment) = ready!(this.receiver.poll_recv(cx)) else {
                let reason = this
                    .receiver
                    .down_reason()
                    .unwrap_or(LinkDownReason::ConnectionLost);
                let err = this.fail_read(
                    io::ErrorKind::ConnectionAborted,
                    LinkError::LinkDown(reason),
                );
                return Poll::Ready(Err(err));
            };
            let drops_before = this.reassembler.stats().drops.total();
            let now = tokio::time::Instant::now().into_std();
            match this.reassembler.push(fragment, now) {
                Err(err) => {
                    tracing::warn!(remote = %this.info.remote(), error = %err, "bad fragment; aborting link");
                    this.sink.abort();
                    return Poll::Ready(Err(this.fail_read(io::ErrorKind::InvalidData, err)));
                }
                Ok(None) => {
                    if this.reassembler.stats().drops.total() != drops_before {
                        tracing::warn!(remote = %this.info.remote(), "message lost in reassembly; aborting link");
                        this.sink.abort();
                        let err = this.fail_read(
                            io::ErrorKind::InvalidData,
                            io::Error::other("a partial message was dropped"),
                        );
                        return Poll::Ready(Err(err));
                    }
                }
                Ok(Some(message)) if message.is_empty() => {
                    this.eos_received = true;
                    // Best effort; dropping the stream closes the link anyway.
                    let _ = this.poll_close_link(cx);
                }
                Ok(Some(message)) => this.read_buf = message,
            }
        }
    }
}

impl AsyncWrite for BleStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.eos_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        ready!(this.poll_drain(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(this.max_write);
        this.start_message(Bytes::copy_from_slice(&buf[..n]))?;
        // Queue what credit allows now; the rest goes on the next write or flush.
        if let Poll::Ready(Err(err)) = this.poll_drain(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.eos_sent {
            ready!(this.poll_drain(cx))?;
            this.start_message(Bytes::new())?;
            this.eos_sent = true;
        }
        ready!(this.poll_drain(cx))?;
        this.poll_close_link(cx)
    }
}
