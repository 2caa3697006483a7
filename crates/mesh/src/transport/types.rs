//! The settings, errors, counters and broadcast stream of a [`MeshTransport`](super::MeshTransport).

use std::time::Duration;

use bitcraps_transport_core::{Bytes, ChannelConfig, Error, PeerId, TransportAddress};
use tokio::sync::mpsc;

use super::MAX_VIRTUAL_MESSAGE;
use crate::config::{ConfigError, MeshConfig};
use crate::{MemoryUsage, SendError, Stats};

/// Settings of a [`MeshTransport`](super::MeshTransport).
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
    /// Mesh broadcasts received and not yet taken from [`MeshTransport::broadcasts`](super::MeshTransport::broadcasts); more are
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
    pub(super) fn channel(&self) -> ChannelConfig {
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

/// Why a [`MeshTransport`](super::MeshTransport) operation failed.
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
    /// A broadcast longer than [`MAX_BROADCAST_MESSAGE`](super::MAX_BROADCAST_MESSAGE).
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

/// The bounded stream of mesh broadcasts (see [`MeshTransport::broadcasts`](super::MeshTransport::broadcasts)).
#[derive(Debug)]
pub struct MeshBroadcasts {
    pub(super) rx: mpsc::Receiver<MeshBroadcast>,
}

impl MeshBroadcasts {
    /// The next broadcast; `None` once the mesh task has ended.
    pub async fn recv(&mut self) -> Option<MeshBroadcast> {
        self.rx.recv().await
    }
}

/// Counters and sizes of a [`MeshTransport`](super::MeshTransport).
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
