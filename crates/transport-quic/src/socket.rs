//! The UDP socket under each quinn endpoint: tokio's socket with quinn-udp's GSO/GRO state, as
//! quinn's own tokio runtime builds it, plus a signal sent when the socket is finally dropped.
//! quinn drops the socket asynchronously (its endpoint driver ends after the last handle and
//! connection are gone); the signal lets `Listener::close` return only once the port is free.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::Interest;
use tokio::sync::oneshot;

/// A UDP socket for quinn that reports when it is dropped.
#[derive(Debug)]
pub(crate) struct Socket {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
    /// Declared last: fields drop in order, so the signal fires only after `io` has closed the
    /// file descriptor (and the port is really free).
    _dropped: DropSignal,
}

/// Fires its channel when dropped.
#[derive(Debug)]
struct DropSignal(Option<oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `addr` and returns the socket and a receiver that completes once it is dropped.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<(Arc<Socket>, oneshot::Receiver<()>)> {
    let std_socket = std::net::UdpSocket::bind(addr)?;
    let state = UdpSocketState::new((&std_socket).into())?;
    std_socket.set_nonblocking(true)?;
    let io = tokio::net::UdpSocket::from_std(std_socket)?;
    let (tx, rx) = oneshot::channel();
    Ok((
        Arc::new(Socket {
            io,
            state,
            _dropped: DropSignal(Some(tx)),
        }),
        rx,
    ))
}

/// Waits until the socket can send.
#[derive(Debug)]
struct Poller(Arc<Socket>);

impl UdpPoller for Poller {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.io.poll_send_ready(cx)
    }
}

impl AsyncUdpSocket for Socket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Poller(self))
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.io.try_io(Interest::WRITABLE, || {
            self.state.send((&self.io).into(), transmit)
        })
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            if let Ok(n) = self.io.try_io(Interest::READABLE, || {
                self.state.recv((&self.io).into(), bufs, meta)
            }) {
                return Poll::Ready(Ok(n));
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.state.gro_segments()
    }
}
