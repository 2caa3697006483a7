//! Prometheus export of the coordinator's counters (cargo feature `metrics`, on
//! `prometheus-client`). Nothing is counted here: a [`CoordinatorCollector`] reads
//! [`TransportCoordinator::stats`], [`listener_stats`](TransportCoordinator::listener_stats)
//! and [`connection_stats`](TransportCoordinator::connection_stats) at each scrape and encodes
//! them, so the hot path pays nothing for the export.
//!
//! Per-peer series are capped: the [`max_peers`](CoordinatorCollector::new) peers with the most
//! traffic (bytes both ways) get series labelled with their peer id; the others are summed into
//! series labelled `peer="other"` (their number is `bitcraps_peers_folded`). Per-peer series
//! exist while the peer is known (a peer's session that ends takes its series with it; the
//! unlabelled `bitcraps_messages_*_total` counters keep its counts). docs/observability.md
//! lists every metric.
//!
//! ```
//! # fn demo(c: bitcraps_coordinator::TransportCoordinator) {
//! let text = bitcraps_coordinator::metrics::render(&c, 32).expect("encodes");
//! assert!(text.contains("bitcraps_messages_delivered_total"));
//! # }
//! ```

use std::fmt::Error as FmtError;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
pub use prometheus_client::registry::Registry;

use crate::stats::PeerStats;
use crate::TransportCoordinator;

/// The `Content-Type` of [`render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The default cap on peers exported with their own series.
pub const DEFAULT_MAX_PEERS: usize = 32;

/// The `peer` label of the series that sum the peers past the cap.
pub const OTHER_PEER: &str = "other";

/// Why the metrics could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The text encoder failed (it writes to a `String`, so this means a bug in it).
    #[error("encoding the metrics failed")]
    Encode(#[from] FmtError),
}

/// Reads a coordinator's counters at each scrape (register it with a [`Registry`]).
#[derive(Debug, Clone)]
pub struct CoordinatorCollector {
    coordinator: TransportCoordinator,
    max_peers: usize,
}

impl CoordinatorCollector {
    /// A collector of `coordinator` exporting at most `max_peers` peers with their own series.
    pub fn new(coordinator: TransportCoordinator, max_peers: usize) -> Self {
        Self {
            coordinator,
            max_peers,
        }
    }
}

/// A registry holding only `coordinator`'s collector.
pub fn registry(coordinator: &TransportCoordinator, max_peers: usize) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(CoordinatorCollector::new(
        coordinator.clone(),
        max_peers,
    )));
    registry
}

/// `registry`'s metrics in the Prometheus text format.
pub fn encode(registry: &Registry) -> Result<String, MetricsError> {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

/// `coordinator`'s metrics in the Prometheus text format (see the module docs).
pub fn render(
    coordinator: &TransportCoordinator,
    max_peers: usize,
) -> Result<String, MetricsError> {
    encode(&registry(coordinator, max_peers))
}

type Labels = Vec<(&'static str, String)>;

/// One metric family: its name, help, type and `(labels, value)` rows.
fn family<V: Copy>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: &[(Labels, V)],
    mut put: impl FnMut(&mut prometheus_client::encoding::MetricEncoder<'_>, V) -> Result<(), FmtError>,
) -> Result<(), FmtError> {
    let mut metric = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        let mut m = metric.encode_family(labels)?;
        put(&mut m, *value)?;
    }
    Ok(())
}

fn counters(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> Result<(), FmtError> {
    family(enc, name, help, MetricType::Counter, rows, |m, v| {
        m.encode_counter::<NoLabelSet, _, u64>(&v, None)
    })
}

fn gauges<V: prometheus_client::encoding::EncodeGaugeValue + Copy>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Labels, V)],
) -> Result<(), FmtError> {
    family(enc, name, help, MetricType::Gauge, rows, |m, v| {
        m.encode_gauge(&v)
    })
}

/// The peers exported with their own series (most traffic first, then by id), and the sum
/// of the rest with how many they are.
pub(crate) fn cap_peers(
    mut peers: Vec<PeerStats>,
    max: usize,
) -> (Vec<PeerStats>, Option<(PeerStats, usize)>) {
    let traffic = |p: &PeerStats| {
        p.traffic
            .bytes_sent
            .saturating_add(p.traffic.bytes_received)
    };
    peers.sort_by(|a, b| traffic(b).cmp(&traffic(a)).then(a.peer.cmp(&b.peer)));
    if peers.len() <= max {
        return (peers, None);
    }
    let rest = peers.split_off(max);
    let n = rest.len();
    let mut sum = rest[0].clone();
    sum.srtt = None;
    for p in &rest[1..] {
        let (t, o) = (&mut sum.traffic, &p.traffic);
        t.bytes_sent += o.bytes_sent;
        t.bytes_received += o.bytes_received;
        t.packets_sent += o.packets_sent;
        t.packets_received += o.packets_received;
        t.connection_count += o.connection_count;
        t.error_count += o.error_count;
        sum.delivered += p.delivered;
        sum.undelivered += p.undelivered;
        sum.duplicates += p.duplicates;
        sum.route_changes += p.route_changes;
        sum.breaker_trips += p.breaker_trips;
        sum.breakers_open += p.breakers_open;
    }
    (peers, Some((sum, n)))
}

impl Collector for CoordinatorCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), FmtError> {
        let stats = self.coordinator.stats();
        let enc = &mut enc;
        encode_transports(enc, &stats.per_transport)?;
        encode_listeners(enc, &self.coordinator)?;

        let known = stats.per_peer.len();
        let (peers, other) = cap_peers(stats.per_peer, self.max_peers);
        let folded = other.as_ref().map_or(0, |(_, n)| *n);
        let mut rows: Vec<(Labels, &PeerStats)> = peers
            .iter()
            .map(|p| (vec![("peer", p.peer.to_string())], p))
            .collect();
        if let Some((sum, _)) = &other {
            rows.push((vec![("peer", OTHER_PEER.to_string())], sum));
        }
        let per = |f: fn(&PeerStats) -> u64| -> Vec<(Labels, u64)> {
            rows.iter().map(|(l, p)| (l.clone(), f(p))).collect()
        };
        gauges(
            enc,
            "bitcraps_peers",
            "Peers known now.",
            &[(vec![], known as u64)],
        )?;
        gauges(
            enc,
            "bitcraps_peers_folded",
            "Peers past the export cap, summed into peer=\"other\".",
            &[(vec![], folded as u64)],
        )?;
        counters(
            enc,
            "bitcraps_peer_bytes_sent",
            "Envelope bytes written to the peer.",
            &per(|p| p.traffic.bytes_sent),
        )?;
        counters(
            enc,
            "bitcraps_peer_bytes_received",
            "Envelope bytes received from the peer.",
            &per(|p| p.traffic.bytes_received),
        )?;
        counters(
            enc,
            "bitcraps_peer_envelopes_sent",
            "Transport messages written to the peer.",
            &per(|p| p.traffic.packets_sent),
        )?;
        counters(
            enc,
            "bitcraps_peer_envelopes_received",
            "Transport messages received from the peer.",
            &per(|p| p.traffic.packets_received),
        )?;
        counters(
            enc,
            "bitcraps_peer_messages_delivered",
            "Application messages from the peer delivered.",
            &per(|p| p.delivered),
        )?;
        counters(
            enc,
            "bitcraps_peer_messages_undelivered",
            "Accepted messages to the peer reported undelivered.",
            &per(|p| p.undelivered),
        )?;
        counters(
            enc,
            "bitcraps_peer_duplicates",
            "Duplicates from the peer dropped.",
            &per(|p| p.duplicates),
        )?;
        counters(
            enc,
            "bitcraps_peer_route_changes",
            "Times the peer's traffic moved to another connection.",
            &per(|p| p.route_changes),
        )?;
        counters(
            enc,
            "bitcraps_peer_breaker_trips",
            "Times one of the peer's route breakers opened.",
            &per(|p| p.breaker_trips),
        )?;
        counters(
            enc,
            "bitcraps_peer_errors",
            "Failed dials, sends and health checks of the peer.",
            &per(|p| p.traffic.error_count),
        )?;
        gauges(
            enc,
            "bitcraps_peer_connections",
            "The peer's open connections.",
            &per(|p| p.traffic.connection_count as u64),
        )?;
        gauges(
            enc,
            "bitcraps_peer_breakers_open",
            "The peer's routes whose breaker is open or half-open.",
            &per(|p| p.breakers_open),
        )?;
        let srtt: Vec<(Labels, f64)> = rows
            .iter()
            .filter_map(|(l, p)| p.srtt.map(|d| (l.clone(), d.as_secs_f64())))
            .collect();
        gauges(
            enc,
            "bitcraps_peer_srtt_seconds",
            "Smoothed RTT of the connection carrying the peer's traffic.",
            &srtt,
        )?;

        let t = stats.totals;
        let one = |v: u64| [(Labels::new(), v)];
        counters(
            enc,
            "bitcraps_messages_delivered",
            "Application messages delivered, every peer since the start.",
            &one(t.delivered),
        )?;
        counters(
            enc,
            "bitcraps_messages_undelivered",
            "Accepted messages reported undelivered, every peer since the start.",
            &one(t.undelivered),
        )?;
        counters(
            enc,
            "bitcraps_duplicates",
            "Duplicates dropped, every peer since the start.",
            &one(t.duplicates),
        )?;
        counters(
            enc,
            "bitcraps_route_changes",
            "Route changes (failover or switch-back), every peer since the start.",
            &one(t.route_changes),
        )?;
        counters(
            enc,
            "bitcraps_breaker_trips",
            "Route breakers opened, every peer since the start.",
            &one(t.breaker_trips),
        )?;
        Ok(())
    }
}

#[path = "metrics_http.rs"]
pub mod http;

#[path = "metrics_families.rs"]
mod families;
use families::{encode_listeners, encode_transports};

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
