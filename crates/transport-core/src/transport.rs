//! The [`Transport`] and [`Listener`] traits every backend implements, with
//! [`TransportKind`] and [`Capabilities`].

use std::fmt;

use async_trait::async_trait;

use crate::{Connection, Error, PeerId, Result, TransportAddress};

/// Which kind of backend a transport is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// TCP with the Noise channel.
    Tcp,
    /// UDP datagrams with Noise and per-datagram AEAD.
    Udp,
    /// QUIC (TLS 1.3).
    Quic,
    /// WebSocket with the Noise channel inside.
    WebSocket,
    /// Bluetooth LE GATT with the Noise channel on top.
    Ble,
    /// The in-process backend.
    Memory,
    /// A third-party backend.
    Other(&'static str),
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Quic => "quic",
            Self::WebSocket => "websocket",
            Self::Ble => "ble",
            Self::Memory => "memory",
            Self::Other(name) => name,
        })
    }
}

/// What a backend promises. Every backend authenticates the remote's [`PeerId`] and protects
/// every message's integrity, and none delivers a message twice or a replayed one; these
/// fields say what else it promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Every message sent is delivered while the connection lives.
    pub reliable: bool,
    /// Messages arrive in the order they were sent.
    pub ordered: bool,
    /// The largest message, in bytes.
    pub max_message_size: usize,
}

impl Capabilities {
    /// A reliable, ordered backend (TCP, QUIC, WebSocket, BLE, memory).
    pub fn reliable(max_message_size: usize) -> Self {
        Self {
            reliable: true,
            ordered: true,
            max_message_size,
        }
    }

    /// A datagram backend: authentic, no duplicates or replays, but no delivery or order
    /// guarantee.
    pub fn datagram(max_message_size: usize) -> Self {
        Self {
            reliable: false,
            ordered: false,
            max_message_size,
        }
    }
}

/// A pluggable transport backend.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Which backend this is.
    fn kind(&self) -> TransportKind;

    /// What it promises.
    fn capabilities(&self) -> Capabilities;

    /// This node's identity, proven on every connection.
    fn local_peer_id(&self) -> PeerId;

    /// True if this transport can listen on or dial `addr`.
    fn supports(&self, addr: &TransportAddress) -> bool;

    /// Starts listening on `addr` (port 0 picks one; see [`Listener::local_addr`]).
    /// [`Error::Unsupported`] if the address is not this transport's.
    async fn listen(&self, addr: &TransportAddress) -> Result<Box<dyn Listener>>;

    /// Dials `addr` and runs the handshake. With `expect`, the remote must prove that identity
    /// or the dial fails with [`Error::PeerMismatch`] before any application byte is accepted.
    async fn dial(&self, addr: &TransportAddress, expect: Option<PeerId>) -> Result<Connection>;
}

/// One inbound attempt, as a listener reports it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Inbound {
    /// An authenticated connection, admitted by the limits.
    Connection(Connection),
    /// An attempt that was refused (a limit) or failed (garbage, timeout, bad signature). The
    /// listener keeps serving. These reports are dropped, not queued, when the application is
    /// not reading them fast enough.
    Refused {
        /// Where it came from.
        remote: TransportAddress,
        /// Why it was refused.
        error: Error,
    },
}

/// Counters of a listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Connections authenticated and handed to the application.
    pub accepted: u64,
    /// Attempts refused by a limit before any handshake work.
    pub refused_by_limit: u64,
    /// Handshakes that failed or timed out.
    pub failed_handshakes: u64,
}

/// A listening endpoint.
#[async_trait]
pub trait Listener: Send + Sync {
    /// The address actually bound (with the real port when 0 was asked for).
    fn local_addr(&self) -> &TransportAddress;

    /// The next inbound event. `Err(Error::ListenerClosed)` once closed.
    async fn accept(&mut self) -> Result<Inbound>;

    /// The next authenticated connection, skipping refused attempts.
    async fn accept_connection(&mut self) -> Result<Connection> {
        loop {
            if let Inbound::Connection(c) = self.accept().await? {
                return Ok(c);
            }
        }
    }

    /// Counters so far.
    fn stats(&self) -> ListenerStats;

    /// Stops listening and frees the address; handshakes in progress are abandoned.
    /// Connections already accepted are not affected.
    async fn close(&mut self);
}

/// Returns [`Error::Unsupported`] unless `transport` supports `addr`.
pub fn ensure_supported(transport: &dyn Transport, addr: &TransportAddress) -> Result<()> {
    if transport.supports(addr) {
        Ok(())
    } else {
        Err(Error::Unsupported(addr.clone()))
    }
}
