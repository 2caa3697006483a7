//! # bitcraps-transport-mem
//!
//! An in-process backend for tests, simulations and examples with no network. Connections are
//! pairs of bounded in-memory pipes, and they go through exactly the same secure channel,
//! limits and connection driver as TCP: the remote still proves its [`PeerId`], hostile bytes
//! still get typed errors, and a slow reader still holds the writer back.
//!
//! Transports meet on a [`MemoryNetwork`]; give each test its own network so tests never
//! collide. Addresses are `memory://N`; listening on `memory://0` picks a free N.

mod network;
mod stream;

pub use network::MemoryNetwork;
pub use stream::MemoryStream;

use std::sync::Arc;

use async_trait::async_trait;

use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::stream::{spawn_stream_listener, RawStream, StreamContext};
use bitcraps_transport_core::{
    Capabilities, ChannelConfig, Connection, ConnectionLimits, Error, Keypair, Listener, PeerId,
    Result, SharedLimiter, Transport, TransportAddress, TransportKind,
};

/// The in-memory backend.
#[derive(Debug, Clone)]
pub struct MemoryTransport {
    ctx: StreamContext,
    network: MemoryNetwork,
    /// This transport's own number on the network: the source its dials come from.
    id: u64,
}

impl MemoryTransport {
    /// A transport on `network` with default settings and limits.
    pub fn new(network: &MemoryNetwork, keypair: Keypair) -> Self {
        Self::with_config(
            network,
            keypair,
            ChannelConfig::default(),
            ConnectionLimits::default(),
        )
    }

    /// A transport on `network` with the given settings and its own limiter.
    pub fn with_config(
        network: &MemoryNetwork,
        keypair: Keypair,
        channel: ChannelConfig,
        limits: ConnectionLimits,
    ) -> Self {
        Self::with_limiter(
            network,
            LocalIdentity::new(keypair),
            channel,
            SharedLimiter::new(limits),
        )
    }

    /// A transport sharing `identity` and `limiter` with other transports.
    pub fn with_limiter(
        network: &MemoryNetwork,
        identity: Arc<LocalIdentity>,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Self {
        Self {
            ctx: StreamContext {
                identity,
                config: Arc::new(channel),
                limiter,
                kind: TransportKind::Memory,
            },
            network: network.clone(),
            id: network.allocate_id(),
        }
    }

    /// The limiter this transport consults.
    pub fn limiter(&self) -> &SharedLimiter {
        &self.ctx.limiter
    }

    /// The network this transport is on.
    pub fn network(&self) -> &MemoryNetwork {
        &self.network
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Memory
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::reliable(self.ctx.config.max_message_size)
    }

    fn local_peer_id(&self) -> PeerId {
        self.ctx.identity.peer_id()
    }

    fn supports(&self, addr: &TransportAddress) -> bool {
        matches!(addr, TransportAddress::Memory(_))
    }

    async fn listen(&self, addr: &TransportAddress) -> Result<Box<dyn Listener>> {
        let TransportAddress::Memory(port) = addr else {
            return Err(Error::Unsupported(addr.clone()));
        };
        let acceptor = self.network.bind(*port)?;
        let local = TransportAddress::Memory(acceptor.port());
        Ok(Box::new(spawn_stream_listener(
            acceptor,
            local,
            self.ctx.clone(),
        )))
    }

    async fn dial(&self, addr: &TransportAddress, expect: Option<PeerId>) -> Result<Connection> {
        let TransportAddress::Memory(port) = addr else {
            return Err(Error::Unsupported(addr.clone()));
        };
        let port = *port;
        let network = self.network.clone();
        let id = self.id;
        self.ctx
            .dial(addr, expect, || async move {
                let (reader, writer) = network.connect(port, id).await?;
                Ok(RawStream {
                    reader,
                    writer,
                    local_addr: TransportAddress::Memory(id),
                    remote_addr: TransportAddress::Memory(port),
                })
            })
            .await
    }
}
