//! # bitcraps-transport-udp
//!
//! UDP datagrams on tokio, secured per datagram: a Noise XX handshake over datagrams (with
//! retransmission, a timeout, anti-amplification padding and per-source rate limits checked
//! before any DH work) proves both PeerIds; then every message is one datagram sealed with an
//! explicit 64-bit counter and checked against an RFC 6479 replay window.
//!
//! What it promises ([`Capabilities::datagram`]): every delivered message is authentic,
//! unmodified and delivered at most once; messages may be lost or reordered. The largest
//! message is `max_payload` (default 1,200 bytes); a larger one fails with
//! [`Error::MessageTooLarge`] and nothing is sent.
//!
//! A replayed, tampered, forged or unknown-session datagram is dropped and counted
//! ([`UdpTransport::datagram_stats`]), never delivered, and never ends the connection: anyone
//! can put our address and a session id on a datagram, so letting junk close a connection would
//! hand every off-path attacker a kill switch. Connections end on a CLOSE, on an authenticated
//! protocol violation, or after `idle_timeout` without an authentic datagram (keep-alives are
//! sent after `keepalive` of silence). A slow application loses datagrams (counted as
//! `dropped_queue_full`) instead of stalling a socket other peers share.
//!
//! Quinn-style split: [`proto`] is the sans-IO core (time passed in, no tokio, the byte-exact
//! datagram formats are documented there); the shell here only moves datagrams and sleeps,
//! through quinn's socket layer `quinn-udp`: segmented sends (GSO) of the datagrams a
//! connection sealed back to back, and coalesced receives (GRO, `recvmmsg`).
//! One listening socket serves many peers through a capped association table; each dial uses
//! its own socket bound to an ephemeral port and connected to the remote, so the kernel
//! filters other sources and a dial never shares state with a listener.
//!
//! ```no_run
//! # async fn run() -> bitcraps_transport_core::Result<()> {
//! use bitcraps_transport_core::{Keypair, Listener, Transport};
//! use bitcraps_transport_udp::UdpTransport;
//!
//! let server = UdpTransport::new(Keypair::generate());
//! let mut listener = server.listen(&"udp://127.0.0.1:0".parse()?).await?;
//! let client = UdpTransport::new(Keypair::generate());
//! let conn = client.dial(listener.local_addr(), Some(server.local_peer_id())).await?;
//! let mut accepted = listener.accept_connection().await?;
//! conn.send("roll".into()).await?;
//! let roll = accepted.recv().await?; // may be lost: UDP does not retransmit data
//! # let _ = roll; Ok(()) }
//! ```

mod config;
mod conn;
mod listener;
pub mod proto;
mod socket;

pub use config::{DatagramStats, UdpConfig, DEFAULT_MAX_PAYLOAD, MAX_PAYLOAD_LIMIT};

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::net::UdpSocket;

use bitcraps_transport_core::backend::new_connection;
use bitcraps_transport_core::policy::{Direction, ReplayWindow};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{
    Capabilities, Connection, ConnectionInfo, Error, Keypair, Listener, PeerId, Result,
    SharedLimiter, Transport, TransportAddress, TransportKind,
};

use config::StatCounters;
use conn::{now, Source};
use proto::dial::{DialHandshake, DialStep};
use proto::session::Session;
use socket::Sink;

/// The UDP backend. Cheap to clone; clones share the identity, limiter and counters.
#[derive(Debug, Clone)]
pub struct UdpTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    identity: Arc<LocalIdentity>,
    config: UdpConfig,
    limiter: SharedLimiter,
    stats: Arc<StatCounters>,
}

impl UdpTransport {
    /// A UDP transport with default settings and limits.
    pub fn new(keypair: Keypair) -> Self {
        Self::with_config(keypair, UdpConfig::default())
    }

    /// A UDP transport with the given settings and its own limiter.
    pub fn with_config(keypair: Keypair, config: UdpConfig) -> Self {
        let limiter = SharedLimiter::new(config.limits.clone());
        Self::with_limiter(LocalIdentity::new(keypair), config, limiter)
    }

    /// A UDP transport sharing `identity` and `limiter` with other transports.
    pub fn with_limiter(
        identity: Arc<LocalIdentity>,
        config: UdpConfig,
        limiter: SharedLimiter,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                identity,
                config,
                limiter,
                stats: Arc::default(),
            }),
        }
    }

    /// The limiter this transport consults.
    pub fn limiter(&self) -> &SharedLimiter {
        &self.inner.limiter
    }

    /// The settings.
    pub fn config(&self) -> &UdpConfig {
        &self.inner.config
    }

    /// Datagrams dropped so far by this transport's listeners and connections.
    pub fn datagram_stats(&self) -> DatagramStats {
        self.inner.stats.snapshot()
    }

    fn socket_addr(addr: &TransportAddress) -> Result<SocketAddr> {
        match addr {
            TransportAddress::Udp(a) => Ok(*a),
            other => Err(Error::Unsupported(other.clone())),
        }
    }

    async fn dial_socket(&self, remote: SocketAddr, expect: Option<PeerId>) -> Result<Connection> {
        let inner = &self.inner;
        let bind: SocketAddr = if remote.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| Error::io("udp bind", e))?;
        socket
            .connect(remote)
            .await
            .map_err(|e| Error::io("udp connect", e))?;
        let local_id = rand::random::<u32>().max(1);
        let mut hs = DialHandshake::start(
            &inner.identity,
            &inner.config.channel,
            expect,
            local_id,
            inner.config.retry_timing(),
            now(),
        )?;
        send(&socket, hs.transmit()).await?;
        let mut buf = vec![0u8; 2048];
        let established = loop {
            let deadline = tokio::time::Instant::from_std(hs.poll_timeout());
            tokio::select! {
                received = socket.recv(&mut buf) => {
                    let n = received.map_err(|e| Error::io("udp handshake receive", e))?;
                    let admit = |peer| inner.limiter.admit(peer, Direction::Outbound);
                    match hs.handle(&buf[..n], now(), admit)? {
                        DialStep::Ignored => {}
                        DialStep::Send => send(&socket, hs.transmit()).await?,
                        DialStep::Established(e) => break e,
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if hs.handle_timeout(now())? {
                        send(&socket, hs.transmit()).await?;
                    }
                }
            }
        };
        let local = socket
            .local_addr()
            .map_err(|e| Error::io("udp local address", e))?;
        let mut seen = ReplayWindow::new();
        seen.mark(established.confirm_counter);
        let session = Session::new(
            established.local_id,
            established.remote_id,
            established.sealer,
            established.opener,
            seen,
            inner.config.session_timing(),
            inner.config.effective_max_payload(),
            now(),
        );
        let info = ConnectionInfo {
            local_peer: inner.identity.peer_id(),
            remote_peer: established.peer,
            local_addr: TransportAddress::Udp(local),
            remote_addr: TransportAddress::Udp(remote),
            kind: TransportKind::Udp,
            outbound: true,
        };
        let (connection, io) = new_connection(info, &inner.config.connection_channel());
        // Segmented sends and coalesced receives from here on (the handshake above read
        // whole datagrams one at a time).
        let socket = Arc::new(
            socket::Socket::new(socket, true).map_err(|e| Error::io("udp socket setup", e))?,
        );
        conn::spawn(
            session,
            io,
            Source::socket(socket.clone()),
            Sink {
                socket,
                to: remote,
                stats: inner.stats.clone(),
            },
            established.guard,
            inner.config.max_datagram(),
        );
        Ok(connection)
    }
}

async fn send(socket: &UdpSocket, datagram: &[u8]) -> Result<()> {
    socket
        .send(datagram)
        .await
        .map(drop)
        .map_err(|e| Error::io("udp handshake send", e))
}

#[async_trait]
impl Transport for UdpTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Udp
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::datagram(self.inner.config.effective_max_payload())
    }

    fn local_peer_id(&self) -> PeerId {
        self.inner.identity.peer_id()
    }

    fn supports(&self, addr: &TransportAddress) -> bool {
        matches!(addr, TransportAddress::Udp(_))
    }

    async fn listen(&self, addr: &TransportAddress) -> Result<Box<dyn Listener>> {
        let bind = Self::socket_addr(addr)?;
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| Error::io("udp bind", e))?;
        let local = socket
            .local_addr()
            .map_err(|e| Error::io("udp local address", e))?;
        let socket =
            socket::Socket::new(socket, false).map_err(|e| Error::io("udp socket setup", e))?;
        tracing::info!(address = %local, "udp listening");
        let inner = &self.inner;
        Ok(Box::new(listener::spawn(
            socket,
            TransportAddress::Udp(local),
            listener::ListenContext {
                identity: inner.identity.clone(),
                config: inner.config.clone(),
                limiter: inner.limiter.clone(),
                stats: inner.stats.clone(),
            },
        )))
    }

    async fn dial(&self, addr: &TransportAddress, expect: Option<PeerId>) -> Result<Connection> {
        let remote = Self::socket_addr(addr)?;
        // The handshake enforces its own deadline (with retransmission); the guard's timeout
        // is only a backstop above it.
        let backstop =
            self.inner.config.channel.handshake_timeout + std::time::Duration::from_secs(1);
        self.inner
            .limiter
            .guard_dial(addr, backstop, "udp dial", self.dial_socket(remote, expect))
            .await
    }
}
