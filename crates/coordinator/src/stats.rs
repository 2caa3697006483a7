//! Statistics: the seed's [`TransportStats`] per transport kind and per peer (atomics on the
//! hot path, no lock), and [`ConnectionStats`].

use std::sync::atomic::{AtomicU64, Ordering};

use bitcraps_transport_core::{PeerId, TransportAddress, TransportKind};

/// Traffic counters (the seed's fields). Packets are transport messages and bytes their size:
/// coordinator envelopes on the wire (application payloads with their 14-byte `DATA`
/// headers, and control envelopes), several envelopes to a packet when they were coalesced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Envelope bytes written.
    pub bytes_sent: u64,
    /// Envelope bytes received.
    pub bytes_received: u64,
    /// Envelopes written.
    pub packets_sent: u64,
    /// Envelopes received.
    pub packets_received: u64,
    /// Connections open now.
    pub connection_count: usize,
    /// Failures: dials, sends, health checks, protocol violations.
    pub error_count: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    packets_sent: AtomicU64,
    packets_received: AtomicU64,
    connections: AtomicU64,
    errors: AtomicU64,
    /// Application messages delivered (peers only).
    pub(crate) delivered: AtomicU64,
    /// Accepted messages reported undelivered (peers only).
    pub(crate) undelivered: AtomicU64,
    /// Duplicates received and dropped (peers only).
    pub(crate) duplicates: AtomicU64,
}

impl Counters {
    pub(crate) fn sent(&self, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.packets_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.packets_received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> TransportStats {
        TransportStats {
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            packets_received: self.packets_received.load(Ordering::Relaxed),
            connection_count: self.connections.load(Ordering::Relaxed) as usize,
            error_count: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Counters of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    /// The peer.
    pub peer: PeerId,
    /// Its traffic.
    pub traffic: TransportStats,
    /// Application messages delivered from it.
    pub delivered: u64,
    /// Messages to it reported undelivered.
    pub undelivered: u64,
    /// Duplicates from it dropped (resent after a reconnect or a retransmission).
    pub duplicates: u64,
}

/// Everything [`TransportCoordinator::stats`](crate::TransportCoordinator::stats) reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoordinatorStats {
    /// Per transport kind, in the order the transports were added.
    pub per_transport: Vec<(TransportKind, TransportStats)>,
    /// Per peer.
    pub per_peer: Vec<PeerStats>,
}

/// One peer's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConnections {
    /// The peer.
    pub peer: PeerId,
    /// The remote address of the connection carrying its traffic, if any.
    pub active: Option<TransportAddress>,
    /// Remote addresses of all its open connections.
    pub connections: Vec<TransportAddress>,
    /// Its routes, in preference order (empty for peers that only dialed us).
    pub routes: Vec<TransportAddress>,
}

/// The seed's connection statistics, per transport and per peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Open connections.
    pub total_connections: usize,
    /// Open connections per transport kind.
    pub connections_by_transport: Vec<(TransportKind, usize)>,
    /// The coordinator's `max_total_connections`.
    pub connection_limit: usize,
    /// Per peer.
    pub peers: Vec<PeerConnections>,
}
