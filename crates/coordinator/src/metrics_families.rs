//! The per-transport and per-listener metric families of the export.

use std::fmt::Error as FmtError;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::{counters, gauges, Labels};
use crate::stats::{TransportStats, RTT_BUCKETS};
use crate::TransportCoordinator;

pub(super) fn encode_transports(
    enc: &mut DescriptorEncoder<'_>,
    per_transport: &[(bitcraps_transport_core::TransportKind, TransportStats)],
) -> Result<(), FmtError> {
    let rows: Vec<(Labels, &TransportStats)> = per_transport
        .iter()
        .map(|(k, s)| (vec![("transport", k.to_string())], s))
        .collect();
    let per = |f: fn(&TransportStats) -> u64| -> Vec<(Labels, u64)> {
        rows.iter().map(|(l, s)| (l.clone(), f(s))).collect()
    };
    counters(
        enc,
        "bitcraps_transport_bytes_sent",
        "Envelope bytes written.",
        &per(|s| s.bytes_sent),
    )?;
    counters(
        enc,
        "bitcraps_transport_bytes_received",
        "Envelope bytes received.",
        &per(|s| s.bytes_received),
    )?;
    counters(
        enc,
        "bitcraps_transport_envelopes_sent",
        "Transport messages written.",
        &per(|s| s.packets_sent),
    )?;
    counters(
        enc,
        "bitcraps_transport_envelopes_received",
        "Transport messages received.",
        &per(|s| s.packets_received),
    )?;
    counters(
        enc,
        "bitcraps_transport_errors",
        "Failures: dials, sends, health checks, protocol violations, refusals.",
        &per(|s| s.error_count),
    )?;
    counters(
        enc,
        "bitcraps_transport_refused_by_limit",
        "Authenticated inbound connections refused by the coordinator's limits.",
        &per(|s| s.refused_by_limit),
    )?;
    counters(
        enc,
        "bitcraps_transport_dial_failures",
        "Dials that failed.",
        &per(|s| s.dial_failures),
    )?;
    gauges(
        enc,
        "bitcraps_transport_connections",
        "Connections open now.",
        &per(|s| s.connection_count as u64),
    )?;
    let mut metric = enc.encode_descriptor(
        "bitcraps_transport_rtt_seconds",
        "Health-probe round trips on connections carrying a peer's traffic.",
        None,
        MetricType::Histogram,
    )?;
    for (labels, s) in &rows {
        let h = &s.rtt;
        let mut buckets: Vec<(f64, u64)> = RTT_BUCKETS.iter().copied().zip(h.buckets).collect();
        buckets.push((f64::INFINITY, h.buckets[RTT_BUCKETS.len()]));
        let sum = h.sum_micros as f64 / 1e6;
        metric
            .encode_family(labels)?
            .encode_histogram::<NoLabelSet>(sum, h.count, &buckets, None)?;
    }
    Ok(())
}

pub(super) fn encode_listeners(
    enc: &mut DescriptorEncoder<'_>,
    coordinator: &TransportCoordinator,
) -> Result<(), FmtError> {
    let listeners = coordinator.listener_stats();
    let rows: Vec<(Labels, bitcraps_transport_core::ListenerStats)> = listeners
        .iter()
        .map(|(a, s)| (vec![("listener", a.to_string())], *s))
        .collect();
    let per = |f: fn(&bitcraps_transport_core::ListenerStats) -> u64| -> Vec<(Labels, u64)> {
        rows.iter().map(|(l, s)| (l.clone(), f(s))).collect()
    };
    counters(
        enc,
        "bitcraps_listener_accepted",
        "Connections authenticated and handed to the coordinator.",
        &per(|s| s.accepted),
    )?;
    counters(
        enc,
        "bitcraps_listener_refused_by_limit",
        "Attempts the listener refused by a limit before any handshake work.",
        &per(|s| s.refused_by_limit),
    )?;
    counters(
        enc,
        "bitcraps_listener_failed_handshakes",
        "Handshakes that failed or timed out.",
        &per(|s| s.failed_handshakes),
    )?;
    let total = coordinator.connection_stats();
    gauges(
        enc,
        "bitcraps_connections",
        "Connections open now, every transport.",
        &[(vec![], total.total_connections as u64)],
    )?;
    gauges(
        enc,
        "bitcraps_connection_limit",
        "The coordinator's max_total_connections.",
        &[(vec![], total.connection_limit as u64)],
    )?;
    Ok(())
}
