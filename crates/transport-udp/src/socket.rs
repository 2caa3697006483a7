//! [`Socket`]: batched datagram I/O on a tokio `UdpSocket` through `quinn-udp` (the socket
//! layer of quinn). Sends are segmented: datagrams of one length sealed back to back leave in
//! one `sendmsg` with `UDP_SEGMENT` (GSO) where the kernel offers it, one `sendmsg` each
//! otherwise. Receives use `recvmmsg` and `UDP_GRO`: one system call may return many
//! datagrams of one sender, coalesced in one buffer, which are split here by their stride.
//!
//! Memory: each socket owns one receive buffer of [`RECV_BUF`] bytes (the most the kernel
//! coalesces); received datagrams are copied out of it into shared chunks of
//! [`RECV_CHUNK`](crate::conn::RECV_CHUNK) bytes, so a queued datagram pins at most its chunk.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::config::StatCounters;
use crate::conn::RECV_CHUNK;
use crate::proto::wire::MAX_UDP_PAYLOAD;

/// The receive buffer: a coalesced (GRO) read never exceeds one 64 KiB IP datagram.
pub(crate) const RECV_BUF: usize = 64 * 1024;

/// A UDP socket with segmented sends and coalesced receives.
#[derive(Debug)]
pub(crate) struct Socket {
    io: UdpSocket,
    state: UdpSocketState,
    /// Connected to its only remote (a dialer's socket): single datagrams need no address.
    connected: bool,
}

/// Received datagrams waiting to be handled, with their sources.
pub(crate) type Received = VecDeque<(SocketAddr, Bytes)>;

/// The buffers one receiving task keeps for [`Socket::recv`].
#[derive(Debug, Default)]
pub(crate) struct RecvBuffers {
    /// What the kernel writes into (allocated on first use).
    raw: Vec<u8>,
    /// Where datagrams are copied to and split off from.
    chunk: BytesMut,
}

impl RecvBuffers {
    /// Allocates the read buffer on first use, zeroed by the allocator (fresh pages stay
    /// untouched until the kernel writes datagrams into them).
    fn ready(&mut self) {
        if self.raw.len() < RECV_BUF {
            self.raw = vec![0; RECV_BUF];
        }
    }
}

impl Socket {
    /// Wraps `io` (switching on GRO and the options quinn-udp sets); `connected` if `io` is
    /// connected to the only address it sends to.
    pub(crate) fn new(io: UdpSocket, connected: bool) -> io::Result<Self> {
        let state = UdpSocketState::new((&io).into())?;
        Ok(Self {
            io,
            state,
            connected,
        })
    }

    /// The most datagrams one [`Socket::send`] may carry (1 without GSO).
    pub(crate) fn max_segments(&self) -> usize {
        self.state.max_gso_segments().max(1)
    }

    /// The most bytes one [`Socket::send`] may carry.
    pub(crate) fn max_send(&self) -> usize {
        MAX_UDP_PAYLOAD
    }

    /// Sends `contents` to `to` as datagrams of `segment` bytes (the last may be shorter):
    /// at most [`Socket::max_segments`] of them and [`Socket::max_send`] bytes in all.
    pub(crate) async fn send(
        &self,
        to: SocketAddr,
        contents: &[u8],
        segment: usize,
    ) -> io::Result<()> {
        // One datagram: a plain send (a connected socket's skips the route lookup an explicit
        // address costs on every call).
        if contents.len() <= segment {
            let sent = if self.connected {
                self.io.send(contents).await
            } else {
                self.io.send_to(contents, to).await
            };
            return sent.map(drop);
        }
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: (contents.len() > segment).then_some(segment),
            src_ip: None,
        };
        self.io
            .async_io(Interest::WRITABLE, || {
                self.state.try_send((&self.io).into(), &transmit)
            })
            .await
    }

    /// Waits for datagrams and appends every one of them to `out`.
    pub(crate) async fn recv(&self, bufs: &mut RecvBuffers, out: &mut Received) -> io::Result<()> {
        bufs.ready();
        let mut meta = [RecvMeta::default()];
        let n = self
            .io
            .async_io(Interest::READABLE, || {
                let mut slices = [IoSliceMut::new(&mut bufs.raw)];
                self.state.recv((&self.io).into(), &mut slices, &mut meta)
            })
            .await?;
        split(bufs, &meta[..n], out);
        Ok(())
    }

    /// As [`Socket::recv`] without waiting: `WouldBlock` when nothing is queued.
    pub(crate) fn try_recv(&self, bufs: &mut RecvBuffers, out: &mut Received) -> io::Result<()> {
        bufs.ready();
        let mut meta = [RecvMeta::default()];
        let n = self.io.try_io(Interest::READABLE, || {
            let mut slices = [IoSliceMut::new(&mut bufs.raw)];
            self.state.recv((&self.io).into(), &mut slices, &mut meta)
        })?;
        split(bufs, &meta[..n], out);
        Ok(())
    }
}

/// Where a connection's datagrams go.
pub(crate) struct Sink {
    pub(crate) socket: Arc<Socket>,
    /// The remote's address.
    pub(crate) to: SocketAddr,
    pub(crate) stats: Arc<StatCounters>,
}

impl Sink {
    /// Sends one datagram.
    pub(crate) async fn send(&self, datagram: &[u8]) {
        self.send_segments(datagram, datagram.len(), 1).await;
    }

    /// Sends `count` datagrams of `segment` bytes sealed back to back in `contents`.
    async fn send_segments(&self, contents: &[u8], segment: usize, count: u64) {
        if let Err(e) = self.socket.send(self.to, contents, segment).await {
            // A datagram backend may lose datagrams; the session's timers handle the rest.
            tracing::trace!(error = %e, "udp send failed");
            self.stats.send_errors.fetch_add(count, Ordering::Relaxed);
        }
    }
}

/// Datagrams of one length sealed back to back, sent as one segmented send.
#[derive(Default)]
pub(crate) struct Segments {
    /// The datagrams, back to back.
    pub(crate) buf: BytesMut,
    segment: usize,
    count: u64,
}

impl Segments {
    /// Makes room for a datagram of `len` bytes: sends what is held first unless the
    /// datagram can join it (same length, under the socket's segment and byte limits).
    pub(crate) async fn make_room(&mut self, len: usize, sink: &Sink) {
        let fits = self.count == 0
            || (len == self.segment
                && (self.count as usize) < sink.socket.max_segments()
                && self.buf.len() + len <= sink.socket.max_send());
        if !fits {
            self.flush(sink).await;
        }
    }

    /// Counts the datagram just appended to `buf`.
    pub(crate) fn added(&mut self, len: usize) {
        if self.count == 0 {
            self.segment = len;
        }
        self.count += 1;
    }

    /// Sends what is held.
    pub(crate) async fn flush(&mut self, sink: &Sink) {
        if self.count > 0 {
            sink.send_segments(&self.buf, self.segment, self.count)
                .await;
        }
        self.buf.clear();
        self.count = 0;
    }
}

/// Copies the datagrams described by `meta` out of the raw buffer into the shared chunk.
fn split(bufs: &mut RecvBuffers, meta: &[RecvMeta], out: &mut Received) {
    let Some(m) = meta.first() else { return };
    let len = m.len.min(bufs.raw.len());
    let stride = if m.stride == 0 { len.max(1) } else { m.stride };
    for datagram in bufs.raw[..len].chunks(stride) {
        if bufs.chunk.capacity() - bufs.chunk.len() < datagram.len() {
            bufs.chunk.reserve(RECV_CHUNK.max(datagram.len()));
        }
        bufs.chunk.extend_from_slice(datagram);
        out.push_back((m.addr, bufs.chunk.split().freeze()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coalesced_read_splits_by_its_stride_and_the_last_may_be_shorter() {
        let from = SocketAddr::from(([127, 0, 0, 1], 9));
        let mut bufs = RecvBuffers {
            raw: (0..=255u8).cycle().take(RECV_BUF).collect(),
            ..RecvBuffers::default()
        };
        let mut out = Received::new();
        let mut meta = RecvMeta {
            addr: from,
            len: 250,
            stride: 100,
            ..RecvMeta::default()
        };
        split(&mut bufs, &[meta], &mut out);
        let got: Vec<(SocketAddr, Vec<u8>)> = out.drain(..).map(|(a, d)| (a, d.to_vec())).collect();
        let want: Vec<(SocketAddr, Vec<u8>)> = [0..100, 100..200, 200..250]
            .into_iter()
            .map(|r| (from, bufs.raw[r].to_vec()))
            .collect();
        assert_eq!(got, want);
        // A plain read (no GRO) is one datagram; no read, nothing.
        meta.len = 7;
        meta.stride = 7;
        split(&mut bufs, &[meta], &mut out);
        split(&mut bufs, &[], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1[..], bufs.raw[..7]);
    }
}
