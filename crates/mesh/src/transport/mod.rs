//! [`MeshTransport`]: the mesh engine run as a `bitcraps_transport_core::Transport` for
//! `mesh://<peer-id>` addresses.
//!
//! One tokio task ([`shell`]) owns the sans-IO [`Mesh`](crate::Mesh) engine, the **direct
//! links** (authenticated connections to neighbours, on any backend, given with
//! [`MeshTransport::add_link`]) and the **virtual connections** ([`virtual_conn`]): a
//! `Connection` to a peer anywhere in the mesh, whose messages travel as directed, signed,
//! end-to-end encrypted mesh packets. Virtual connections promise neither delivery nor order
//! (`Capabilities::datagram`); the coordinator's session protocol adds both on top. See
//! `docs/mesh.md`, section "Integration".

mod shell;
mod virtual_conn;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcraps_transport_core::{
    async_trait, Bytes, Capabilities, ChannelConfig, Connection, Error, Keypair, LimitKind,
    LimitRejection, Listener, PeerId, Result, Transport, TransportAddress, TransportKind,
};
use tokio::sync::{mpsc, oneshot};

use crate::config::{ConfigError, MeshConfig};
use crate::crypto::{MAX_BROADCAST_PLAINTEXT, MAX_DIRECTED_PLAINTEXT};
use crate::frame::FRAME_HEADER;
use crate::{MemoryUsage, SendError, Stats};
use shell::Command;

/// The backend name of mesh connections (`TransportKind::Other`).
pub const KIND: TransportKind = TransportKind::Other("mesh");
/// The largest message of a virtual connection: the plaintext of one directed mesh packet less
/// the application frame's header ([`crate::frame`]): 967 bytes.
pub const MAX_VIRTUAL_MESSAGE: usize = MAX_DIRECTED_PLAINTEXT - FRAME_HEADER;
/// The largest payload of [`MeshTransport::broadcast`]: 1,015 bytes.
pub const MAX_BROADCAST_MESSAGE: usize = MAX_BROADCAST_PLAINTEXT - FRAME_HEADER;

/// Settings of a [`MeshTransport`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MeshTransportConfig {
    /// The engine's settings.
    pub mesh: MeshConfig,
    /// Virtual connections open at once, inbound and outbound (default 64). One more dial
    /// fails with `Error::Limit(TotalConnections)`; one more inbound origin is dropped.
    pub max_virtual_connections: usize,
    /// Direct links at once (default 32, at most [`crate::MAX_LINKS`]).
    pub max_direct_links: usize,
    /// A virtual connection that received no packet from its peer for this long ends with
    /// `Error::LinkLost` (default 60 s; the coordinator probes every 5 s).
    pub virtual_idle_timeout: Duration,
    /// Messages received on one virtual connection and not yet taken by its reader; more are
    /// dropped (the link does not promise delivery) (default 128).
    pub virtual_queue: usize,
    /// Mesh broadcasts received and not yet taken from [`MeshTransport::broadcasts`]; more are
    /// dropped and counted (default 256).
    pub broadcast_queue: usize,
    /// Inbound virtual connections waiting for `Listener::accept` (default 16).
    pub accept_queue: usize,
    /// How long a `close` of a virtual connection may take (default 5 s).
    pub close_timeout: Duration,
    /// Packets per second each direct link may bring in (default 500); more are dropped
    /// before any signature check, so one neighbour cannot make this node verify without end.
    pub link_packets_per_second: u32,
    /// The burst of packets above that rate a direct link may bring in (default 1,000).
    pub link_packet_burst: u32,
}

impl Default for MeshTransportConfig {
    fn default() -> Self {
        Self {
            mesh: MeshConfig::default(),
            max_virtual_connections: 64,
            max_direct_links: 32,
            virtual_idle_timeout: Duration::from_secs(60),
            virtual_queue: 128,
            broadcast_queue: 256,
            accept_queue: 16,
            close_timeout: Duration::from_secs(5),
            link_packets_per_second: 500,
            link_packet_burst: 1_000,
        }
    }
}

impl MeshTransportConfig {
    fn channel(&self) -> ChannelConfig {
        ChannelConfig {
            max_message_size: MAX_VIRTUAL_MESSAGE,
            send_queue: self.virtual_queue.max(1),
            recv_queue: self.virtual_queue.max(1),
            recv_buffer_bytes: MAX_VIRTUAL_MESSAGE * self.virtual_queue.max(1),
            close_timeout: self.close_timeout,
            ..ChannelConfig::default()
        }
    }
}

/// Why a [`MeshTransport`] operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MeshTransportError {
    /// The engine's settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The engine refused to originate the packet.
    #[error(transparent)]
    Send(#[from] SendError),
    /// `max_direct_links` direct links are up.
    #[error("{0} direct links are up already")]
    TooManyLinks(usize),
    /// A broadcast longer than [`MAX_BROADCAST_MESSAGE`].
    #[error("broadcast of {len} bytes exceeds the maximum {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A direct link's remote is this node.
    #[error("a direct link to ourselves")]
    LinkToSelf,
    /// No underlying transport serves the address.
    #[error("no underlying transport serves {0}")]
    NoTransport(TransportAddress),
    /// The underlying transport failed.
    #[error(transparent)]
    Transport(#[from] Error),
    /// The mesh task has ended.
    #[error("the mesh transport has stopped")]
    Stopped,
}

/// A broadcast received from the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshBroadcast {
    /// Who sent it (verified by its signature).
    pub origin: PeerId,
    /// Hops it travelled.
    pub hops: u8,
    /// The payload.
    pub payload: Bytes,
}

/// The bounded stream of mesh broadcasts (see [`MeshTransport::broadcasts`]).
#[derive(Debug)]
pub struct MeshBroadcasts {
    rx: mpsc::Receiver<MeshBroadcast>,
}

impl MeshBroadcasts {
    /// The next broadcast; `None` once the mesh task has ended.
    pub async fn recv(&mut self) -> Option<MeshBroadcast> {
        self.rx.recv().await
    }
}

/// Counters and sizes of a [`MeshTransport`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeshTransportStats {
    /// The engine's counters.
    pub engine: Stats,
    /// The engine's bounded parts.
    pub memory: MemoryUsage,
    /// Direct links up.
    pub direct_links: usize,
    /// Virtual connections open.
    pub virtual_connections: usize,
    /// Packets for us dropped: the virtual connection's queue was full, no listener took a
    /// new origin, or the cap of virtual connections was reached.
    pub dropped_deliveries: u64,
    /// Broadcasts dropped because the broadcast stream was full or not taken.
    pub dropped_broadcasts: u64,
    /// Transmissions dropped because a direct link's send queue was full, or messages the
    /// engine refused to originate.
    pub dropped_transmissions: u64,
    /// Payloads for us refused by the application frame: stale (a replay, or a clock off by
    /// more than the freshness window) or malformed.
    pub refused_frames: u64,
    /// Packets dropped because their direct link was over its rate limit.
    pub rate_limited: u64,
}

struct Inner {
    me: PeerId,
    commands: mpsc::Sender<Command>,
    underlying: Vec<Arc<dyn Transport>>,
    broadcasts: Mutex<Option<MeshBroadcasts>>,
    /// Dropped with the last handle: tells the `listen_direct` tasks to close their listeners.
    alive: tokio::sync::watch::Sender<()>,
}

/// The mesh as a backend: see the module docs. Cheap to clone (one `Arc` inside); the mesh
/// task ends when the last clone is dropped.
#[derive(Clone)]
pub struct MeshTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MeshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshTransport")
            .field("peer", &self.inner.me)
            .finish_non_exhaustive()
    }
}

impl MeshTransport {
    /// Starts a mesh transport for `keypair` (call within a tokio runtime). `underlying` are
    /// the transports [`listen_direct`](Self::listen_direct) and
    /// [`dial_direct`](Self::dial_direct) use for direct links.
    pub fn new(
        keypair: Keypair,
        config: MeshTransportConfig,
        underlying: Vec<Arc<dyn Transport>>,
    ) -> std::result::Result<Self, MeshTransportError> {
        let me = keypair.peer_id();
        let (commands, broadcasts) = shell::spawn(keypair, config, rand::random())?;
        Ok(Self {
            inner: Arc::new(Inner {
                me,
                commands,
                underlying,
                broadcasts: Mutex::new(Some(MeshBroadcasts { rx: broadcasts })),
                alive: tokio::sync::watch::Sender::new(()),
            }),
        })
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> std::result::Result<T, MeshTransportError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(make(tx))
            .await
            .map_err(|_| MeshTransportError::Stopped)?;
        rx.await.map_err(|_| MeshTransportError::Stopped)
    }

    /// Makes `conn` (an authenticated connection to a neighbour, on any backend) a direct link
    /// of the mesh: mesh packets travel on it as transport messages, and when it ends the
    /// engine is told the link is down. Its messages must be able to hold one mesh packet
    /// ([`crate::wire::MAX_PACKET`] bytes).
    pub async fn add_link(&self, conn: Connection) -> std::result::Result<(), MeshTransportError> {
        self.ask(|reply| Command::AddLink { conn, reply }).await?
    }

    /// Dials `addr` on the first underlying transport that serves it (the remote must prove
    /// `expect` if given) and makes the connection a direct link.
    pub async fn dial_direct(
        &self,
        addr: &TransportAddress,
        expect: Option<PeerId>,
    ) -> std::result::Result<PeerId, MeshTransportError> {
        let t = self.underlying_for(addr)?;
        let conn = t.dial(addr, expect).await?;
        let peer = conn.remote_peer();
        self.add_link(conn).await?;
        Ok(peer)
    }

    /// Listens on `addr` on the first underlying transport that serves it and makes every
    /// connection it accepts a direct link, in a background task that ends with the listener
    /// or the mesh. Returns the bound address.
    pub async fn listen_direct(
        &self,
        addr: &TransportAddress,
    ) -> std::result::Result<TransportAddress, MeshTransportError> {
        let t = self.underlying_for(addr)?;
        let mut listener = t.listen(addr).await?;
        let bound = listener.local_addr().clone();
        let mesh = self.clone_weak();
        let mut alive = self.inner.alive.subscribe();
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    // Only ever an error: the last handle is gone.
                    _ = alive.changed() => break,
                    conn = listener.accept_connection() => match conn {
                        Ok(conn) => conn,
                        Err(_) => break,
                    },
                };
                let Some(mesh) = mesh.upgrade() else { break };
                let mesh = MeshTransport { inner: mesh };
                match mesh.add_link(conn).await {
                    Ok(()) => {}
                    Err(MeshTransportError::Stopped) => break,
                    Err(e) => tracing::debug!(error = %e, "direct link refused"),
                }
            }
            listener.close().await;
        });
        Ok(bound)
    }

    fn clone_weak(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    fn underlying_for(
        &self,
        addr: &TransportAddress,
    ) -> std::result::Result<Arc<dyn Transport>, MeshTransportError> {
        self.inner
            .underlying
            .iter()
            .find(|t| t.supports(addr))
            .cloned()
            .ok_or_else(|| MeshTransportError::NoTransport(addr.clone()))
    }

    /// Floods `payload` (at most [`MAX_BROADCAST_MESSAGE`] bytes) to every node of the mesh,
    /// signed by this node: best effort, at most once per node, no receipt.
    pub async fn broadcast(&self, payload: Bytes) -> std::result::Result<(), MeshTransportError> {
        if payload.len() > MAX_BROADCAST_MESSAGE {
            return Err(MeshTransportError::TooLong {
                len: payload.len(),
                max: MAX_BROADCAST_MESSAGE,
            });
        }
        self.ask(|reply| Command::Broadcast { payload, reply })
            .await?
            .map_err(MeshTransportError::Send)
    }

    /// The stream of broadcasts received from the mesh (bounded: see
    /// [`MeshTransportConfig::broadcast_queue`]). There is one: the first call takes it.
    pub fn broadcasts(&self) -> Option<MeshBroadcasts> {
        self.inner
            .broadcasts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Counters and sizes now.
    pub async fn stats(&self) -> std::result::Result<MeshTransportStats, MeshTransportError> {
        self.ask(Command::Stats).await
    }
}

fn mesh_peer(addr: &TransportAddress) -> Result<PeerId> {
    match addr {
        TransportAddress::Mesh(p) => Ok(*p),
        other => Err(Error::Unsupported(other.clone())),
    }
}

pub(crate) fn limit(limit: LimitKind) -> Error {
    Error::Limit(LimitRejection {
        limit,
        retry_after: None,
    })
}

#[async_trait]
impl Transport for MeshTransport {
    fn kind(&self) -> TransportKind {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::datagram(MAX_VIRTUAL_MESSAGE)
    }

    fn local_peer_id(&self) -> PeerId {
        self.inner.me
    }

    fn supports(&self, addr: &TransportAddress) -> bool {
        matches!(addr, TransportAddress::Mesh(_))
    }

    /// Inbound virtual connections: one for each origin that sends to us while none is open.
    /// Any `mesh://` address listens for this node (the local address is `mesh://<own id>`).
    async fn listen(&self, addr: &TransportAddress) -> Result<Box<dyn Listener>> {
        mesh_peer(addr)?;
        let listener = self
            .ask(Command::Listen)
            .await
            .map_err(|_| stopped_error())?;
        Ok(Box::new(listener))
    }

    /// A virtual connection to the peer: no handshake (every packet from the peer is signed
    /// by it, and the payloads are sealed to its key), so it succeeds at once, reachable or
    /// not. One per peer: a dial ends the peer's older virtual connection (inbound or
    /// outbound) with `Error::LinkLost`. [`Error::Limit`] with `TotalConnections` at the cap.
    async fn dial(&self, addr: &TransportAddress, expect: Option<PeerId>) -> Result<Connection> {
        let peer = mesh_peer(addr)?;
        if let Some(expected) = expect.filter(|e| *e != peer) {
            return Err(Error::PeerMismatch {
                expected,
                actual: peer,
            });
        }
        if peer == self.inner.me {
            return Err(Error::Unsupported(addr.clone()));
        }
        self.ask(|reply| Command::Dial { peer, reply })
            .await
            .map_err(|_| stopped_error())?
    }
}

fn stopped_error() -> Error {
    Error::LinkLost("the mesh transport has stopped".into())
}

#[cfg(test)]
mod tests;
