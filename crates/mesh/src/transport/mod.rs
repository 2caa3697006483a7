//! [`MeshTransport`]: the mesh engine run as a `bitcraps_transport_core::Transport` for
//! `mesh://<peer-id>` addresses.
//!
//! One tokio task (`shell.rs`) owns the sans-IO [`Mesh`](crate::Mesh) engine, the **direct
//! links** (authenticated connections to neighbours, on any backend, given with
//! [`MeshTransport::add_link`]) and the **virtual connections** (`virtual_conn.rs`): a
//! `Connection` to a peer anywhere in the mesh, whose messages travel as directed, signed,
//! end-to-end encrypted mesh packets. Virtual connections promise neither delivery nor order
//! (`Capabilities::datagram`); the coordinator's session protocol adds both on top. See
//! `docs/mesh.md`, section "Integration".

mod shell;
mod types;
mod virtual_conn;

pub use types::{
    MeshBroadcast, MeshBroadcasts, MeshTransportConfig, MeshTransportError, MeshTransportStats,
};

use std::sync::{Arc, Mutex};

use bitcraps_transport_core::{
    async_trait, Bytes, Capabilities, Connection, Error, Keypair, LimitKind, LimitRejection,
    Listener, PeerId, Result, Transport, TransportAddress, TransportKind,
};
use tokio::sync::{mpsc, oneshot};

use crate::crypto::{MAX_BROADCAST_PLAINTEXT, MAX_DIRECTED_PLAINTEXT};
use crate::frame::FRAME_HEADER;
use shell::Command;

/// The backend name of mesh connections (`TransportKind::Other`).
pub const KIND: TransportKind = TransportKind::Other("mesh");
/// The largest message of a virtual connection: the plaintext of one directed mesh packet less
/// the application frame's header ([`crate::frame`]): 967 bytes.
pub const MAX_VIRTUAL_MESSAGE: usize = MAX_DIRECTED_PLAINTEXT - FRAME_HEADER;
/// The largest payload of [`MeshTransport::broadcast`]: 1,015 bytes.
pub const MAX_BROADCAST_MESSAGE: usize = MAX_BROADCAST_PLAINTEXT - FRAME_HEADER;

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
