//! Statistics: the seed's [`TransportStats`] per transport kind and per peer (atomics on the
//! hot path, no lock), [`PeerStats`] with the session's counters, [`MessageTotals`] over every
//! peer the coordinator ever had, an [`RttHistogram`] per transport, and [`ConnectionStats`].
//! Every type here is `Serialize` (peer ids and addresses as text, transport kinds by name).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bitcraps_transport_core::{PeerId, TransportAddress, TransportKind};
use serde::{Serialize, Serializer};

/// Upper bounds (seconds) of the [`RttHistogram`] buckets; a last, unbounded bucket follows.
pub const RTT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Traffic counters (the seed's fields, and the coordinator's refusals and dial failures).
/// Packets are transport messages and bytes their size: coordinator envelopes on the wire
/// (application payloads with their 14-byte `DATA` headers, and control envelopes), several
/// envelopes to a packet when they were coalesced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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
    /// Failures: dials, sends, health checks, protocol violations, refused inbound attempts.
    pub error_count: u64,
    /// Authenticated inbound connections the coordinator refused by its connection limits
    /// (per transport only; the listener's own refusals are in its `ListenerStats`).
    pub refused_by_limit: u64,
    /// Dials that failed (per transport only).
    pub dial_failures: u64,
    /// Health-probe round trips on connections carrying a peer's traffic (per transport only).
    pub rtt: RttHistogram,
}

/// A histogram of RTT samples: counts per bucket of [`RTT_BUCKETS`] (not cumulative; the
/// last bucket is everything above the last bound), their sum and their number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RttHistogram {
    /// Samples per bucket.
    pub buckets: [u64; RTT_BUCKETS.len() + 1],
    /// Sum of the samples, in microseconds.
    pub sum_micros: u64,
    /// Number of samples.
    pub count: u64,
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
    /// Times traffic moved to another connection (peers only).
    pub(crate) route_changes: AtomicU64,
    /// Times a route's breaker opened (peers only).
    pub(crate) breaker_trips: AtomicU64,
    /// Routes whose breaker is open or half-open now (peers only).
    pub(crate) breakers_open: AtomicU64,
    /// The active connection's smoothed RTT in microseconds, 0 if none (peers only).
    pub(crate) srtt_micros: AtomicU64,
    /// Inbound connections refused by the coordinator's limits (transports only).
    pub(crate) refused: AtomicU64,
    /// Dials that failed (transports only).
    pub(crate) dial_failures: AtomicU64,
    rtt_buckets: [AtomicU64; RTT_BUCKETS.len() + 1],
    rtt_sum_micros: AtomicU64,
    rtt_count: AtomicU64,
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

    /// One RTT sample into the histogram.
    pub(crate) fn rtt_sample(&self, rtt: Duration) {
        let secs = rtt.as_secs_f64();
        let bucket = RTT_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(RTT_BUCKETS.len());
        self.rtt_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.rtt_sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.rtt_count.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> TransportStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TransportStats {
            bytes_sent: load(&self.bytes_sent),
            bytes_received: load(&self.bytes_received),
            packets_sent: load(&self.packets_sent),
            packets_received: load(&self.packets_received),
            connection_count: load(&self.connections) as usize,
            error_count: load(&self.errors),
            refused_by_limit: load(&self.refused),
            dial_failures: load(&self.dial_failures),
            rtt: RttHistogram {
                buckets: std::array::from_fn(|i| load(&self.rtt_buckets[i])),
                sum_micros: load(&self.rtt_sum_micros),
                count: load(&self.rtt_count),
            },
        }
    }

    /// The message counters of a peer.
    pub(crate) fn totals(&self) -> MessageTotals {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MessageTotals {
            delivered: load(&self.delivered),
            undelivered: load(&self.undelivered),
            duplicates: load(&self.duplicates),
            route_changes: load(&self.route_changes),
            breaker_trips: load(&self.breaker_trips),
        }
    }

    /// Adds a finished peer's message counters (into the coordinator's record of ended
    /// sessions).
    pub(crate) fn absorb(&self, t: MessageTotals) {
        let add = |a: &AtomicU64, v: u64| a.fetch_add(v, Ordering::Relaxed);
        add(&self.delivered, t.delivered);
        add(&self.undelivered, t.undelivered);
        add(&self.duplicates, t.duplicates);
        add(&self.route_changes, t.route_changes);
        add(&self.breaker_trips, t.breaker_trips);
    }
}

/// Message counters, of one peer or summed over peers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MessageTotals {
    /// Application messages delivered to this node's application.
    pub delivered: u64,
    /// Accepted messages reported undelivered.
    pub undelivered: u64,
    /// Duplicates received and dropped.
    pub duplicates: u64,
    /// Times traffic moved to another connection (failover or switch-back).
    pub route_changes: u64,
    /// Times a route's circuit breaker opened.
    pub breaker_trips: u64,
}

impl std::ops::Add for MessageTotals {
    type Output = Self;

    /// The sum of two.
    fn add(self, o: Self) -> Self {
        Self {
            delivered: self.delivered + o.delivered,
            undelivered: self.undelivered + o.undelivered,
            duplicates: self.duplicates + o.duplicates,
            route_changes: self.route_changes + o.route_changes,
            breaker_trips: self.breaker_trips + o.breaker_trips,
        }
    }
}

/// Counters of one peer (its current session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerStats {
    /// The peer.
    pub peer: PeerId,
    /// Its traffic (the per-transport fields `refused_by_limit`, `dial_failures` and `rtt`
    /// are zero here).
    pub traffic: TransportStats,
    /// Application messages delivered from it.
    pub delivered: u64,
    /// Messages to it reported undelivered.
    pub undelivered: u64,
    /// Duplicates from it dropped (resent after a reconnect or a retransmission).
    pub duplicates: u64,
    /// Times its traffic moved to another connection.
    pub route_changes: u64,
    /// Times one of its routes' breakers opened.
    pub breaker_trips: u64,
    /// Its routes whose breaker is open or half-open now.
    pub breakers_open: u64,
    /// The smoothed RTT of the connection carrying its traffic, once measured.
    pub srtt: Option<Duration>,
}

/// Everything [`TransportCoordinator::stats`](crate::TransportCoordinator::stats) reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoordinatorStats {
    /// Per transport kind, in the order the transports were added.
    #[serde(serialize_with = "by_kind")]
    pub per_transport: Vec<(TransportKind, TransportStats)>,
    /// Per peer known now.
    pub per_peer: Vec<PeerStats>,
    /// Message counters over every peer since the coordinator started (ended sessions
    /// included, so these only grow).
    pub totals: MessageTotals,
}

/// One peer's connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionStats {
    /// Open connections.
    pub total_connections: usize,
    /// Open connections per transport kind.
    #[serde(serialize_with = "by_kind")]
    pub connections_by_transport: Vec<(TransportKind, usize)>,
    /// The coordinator's `max_total_connections`.
    pub connection_limit: usize,
    /// Per peer.
    pub peers: Vec<PeerConnections>,
}

/// `(kind, value)` pairs as `[["tcp", value], ...]`.
fn by_kind<S: Serializer, T: Serialize>(
    pairs: &[(TransportKind, T)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(pairs.iter().map(|(k, v)| (k.to_string(), v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_samples_land_in_their_bucket() {
        let c = Counters::default();
        c.rtt_sample(Duration::from_micros(300));
        c.rtt_sample(Duration::from_millis(1));
        c.rtt_sample(Duration::from_millis(30));
        c.rtt_sample(Duration::from_secs(60));
        let h = c.snapshot().rtt;
        assert_eq!(h.count, 4);
        assert_eq!(h.sum_micros, 300 + 1_000 + 30_000 + 60_000_000);
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1); // 1 ms is within the 1 ms bound
        assert_eq!(h.buckets[6], 1); // 30 ms: the 50 ms bucket
        assert_eq!(h.buckets[RTT_BUCKETS.len()], 1);
        assert_eq!(h.buckets.iter().sum::<u64>(), 4);
    }

    #[test]
    fn absorbed_totals_add_up() {
        let c = Counters::default();
        c.delivered.store(3, Ordering::Relaxed);
        c.route_changes.store(1, Ordering::Relaxed);
        let ended = Counters::default();
        ended.absorb(c.totals());
        ended.absorb(c.totals());
        let t = ended.totals();
        assert_eq!((t.delivered, t.route_changes), (6, 2));
        assert_eq!((t + c.totals()).delivered, 9);
    }

    #[test]
    fn stats_serialize_with_kinds_by_name() {
        let stats = CoordinatorStats {
            per_transport: vec![(TransportKind::Tcp, TransportStats::default())],
            ..Default::default()
        };
        let v = serde_json::to_value(&stats).unwrap();
        assert_eq!(v["per_transport"][0][0], "tcp");
        assert_eq!(v["per_transport"][0][1]["bytes_sent"], 0);
        assert_eq!(v["totals"]["delivered"], 0);
    }
}
