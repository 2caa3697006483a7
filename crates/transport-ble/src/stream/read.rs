//! [`BleReadHalf`]: reassembles received fragments into the stream's bytes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, ReadBuf};

use super::{Ends, StreamCounters, READ_ENDED};
use crate::fragment::{Reassembler, ReassemblerStats};
use crate::link::{LinkDownReason, LinkError, LinkInfo, LinkReceiver, LinkSender};

/// The reading half of a [`BleStream`](super::BleStream), from
/// [`BleStream::into_split`](super::BleStream::into_split). Owns the reassembler; shares no
/// lock with the writing half.
#[derive(Debug)]
pub struct BleReadHalf {
    info: LinkInfo,
    receiver: LinkReceiver,
    /// For aborting on hostile input and closing once both directions ended.
    control: LinkSender,
    reassembler: Reassembler,
    read_buf: Bytes,
    eos_received: bool,
    read_error: Option<(io::ErrorKind, String)>,
    ends: Arc<Ends>,
    counters: Arc<StreamCounters>,
}

impl BleReadHalf {
    pub(super) fn new(
        receiver: LinkReceiver,
        control: LinkSender,
        reassembler: Reassembler,
        ends: Arc<Ends>,
        counters: Arc<StreamCounters>,
    ) -> Self {
        Self {
            info: receiver.info().clone(),
            receiver,
            control,
            reassembler,
            read_buf: Bytes::new(),
            eos_received: false,
            read_error: None,
            ends,
            counters,
        }
    }

    /// The link's facts.
    pub fn info(&self) -> &LinkInfo {
        &self.info
    }

    /// Fragments and messages received, and reassembly drops by reason.
    pub fn reassembler_stats(&self) -> ReassemblerStats {
        self.reassembler.stats()
    }

    /// Chunk bytes held in partial messages now.
    pub fn buffered_bytes(&self) -> usize {
        self.reassembler.buffered_bytes()
    }

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.receiver.down_reason()
    }

    /// Resolves when the link goes down.
    pub async fn link_down(&self) -> LinkDownReason {
        self.receiver.down().await
    }

    fn fail(&mut self, kind: io::ErrorKind, err: impl std::error::Error) -> io::Error {
        let text = err.to_string();
        self.read_error = Some((kind, text.clone()));
        io::Error::new(kind, text)
    }

    /// Hostile or broken input: abort the link and free the reassembly state.
    fn fail_hostile(&mut self, err: impl std::error::Error) -> io::Error {
        tracing::warn!(remote = %self.info.remote(), error = %err, "bad BLE fragment stream; aborting link");
        self.control.abort();
        self.counters.set_drops(&self.reassembler.stats().drops);
        self.reassembler.clear();
        self.fail(io::ErrorKind::InvalidData, err)
    }
}

impl AsyncRead for BleReadHalf {
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
                // A dead link stays a typed error (`link_error` finds the LinkError) however
                // often it is read.
                if let (io::ErrorKind::ConnectionAborted, Some(reason)) =
                    (kind, this.receiver.down_reason())
                {
                    return Poll::Ready(Err(io::Error::new(*kind, LinkError::LinkDown(reason))));
                }
                return Poll::Ready(Err(io::Error::new(*kind, text.clone())));
            }
            let Some(fragment) = ready!(this.receiver.poll_recv(cx)) else {
                let reason = this
                    .receiver
                    .down_reason()
                    .unwrap_or(LinkDownReason::ConnectionLost);
                // Partial messages of a dead link are worth nothing: free them now.
                this.reassembler.clear();
                let err = LinkError::LinkDown(reason);
                this.read_error = Some((io::ErrorKind::ConnectionAborted, err.to_string()));
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, err)));
            };
            this.counters.received_fragment();
            let drops_before = this.reassembler.stats().drops.total();
            let now = tokio::time::Instant::now().into_std();
            match this.reassembler.push(fragment, now) {
                Err(err) => return Poll::Ready(Err(this.fail_hostile(err))),
                Ok(None) => {
                    // The link is ordered and reliable: any dropped partial message means the
                    // peer misbehaves.
                    if this.reassembler.stats().drops.total() != drops_before {
                        let err = io::Error::other("a partial message was dropped");
                        return Poll::Ready(Err(this.fail_hostile(err)));
                    }
                }
                Ok(Some(message)) if message.is_empty() => {
                    this.eos_received = true;
                    if this.ends.set(READ_ENDED) {
                        // Our end of stream is queued too: close the link (best effort; it
                        // closes anyway once both halves are dropped).
                        this.control.try_close();
                    }
                }
                Ok(Some(message)) => {
                    this.counters.received_message(message.len());
                    this.read_buf = message;
                }
            }
        }
    }
}
