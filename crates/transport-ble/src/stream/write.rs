//! [`BleWriteHalf`]: turns writes into fragmented link messages.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;

use super::{Ends, StreamCounters, WRITE_ENDED};
use crate::fragment::{FragmentError, Fragmenter, FragmenterStats, Fragments};
use crate::link::{LinkDownReason, LinkError, LinkInfo, LinkSink};

/// The writing half of a [`BleStream`](super::BleStream), from
/// [`BleStream::into_split`](super::BleStream::into_split). Owns the fragmenter and the write
/// credit; shares no lock with the reading half.
#[derive(Debug)]
pub struct BleWriteHalf {
    info: LinkInfo,
    sink: LinkSink,
    fragmenter: Fragmenter,
    max_write: usize,
    pending: Option<Fragments>,
    eos_sent: bool,
    end_marked: bool,
    close_due: bool,
    ends: Arc<Ends>,
    counters: Arc<StreamCounters>,
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

impl BleWriteHalf {
    pub(super) fn new(
        sink: LinkSink,
        max_write: usize,
        ends: Arc<Ends>,
        counters: Arc<StreamCounters>,
    ) -> Self {
        Self {
            info: sink.info().clone(),
            sink,
            fragmenter: Fragmenter::new(),
            max_write: max_write.max(1),
            pending: None,
            eos_sent: false,
            end_marked: false,
            close_due: false,
            ends,
            counters,
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

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.sink.down_reason()
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
        let len = message.len();
        let fragments = self
            .fragmenter
            .fragment(message, self.info.max_payload())
            .map_err(fragment_error)?;
        self.counters
            .sent_message(len, Fragments::count(&fragments));
        self.pending = Some(fragments);
        Ok(())
    }

    /// Once both directions have ended, closes the link gracefully (queued data first).
    fn poll_close_link(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.close_due {
            return Poll::Ready(Ok(()));
        }
        if ready!(self.sink.poll_ready(cx)).is_ok() {
            // A failure means the link is already going down: nothing left to close.
            let _ = self.sink.start_close();
        }
        self.close_due = false;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for BleWriteHalf {
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
        if !this.end_marked {
            // Our end of stream is queued: if the remote's has arrived, close the link.
            this.end_marked = true;
            this.close_due = this.ends.set(WRITE_ENDED);
        }
        this.poll_close_link(cx)
    }
}
