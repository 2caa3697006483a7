//! Turning the world's records into a [`SimReport`].

use super::metrics::{PartitionReport, Percentiles, SimReport, TrafficReport};
use super::world::{Msg, World};

fn traffic<'m>(msgs: impl Iterator<Item = &'m Msg>) -> TrafficReport {
    let mut r = TrafficReport::default();
    let (mut hops, mut latency) = (Vec::new(), Vec::new());
    let (mut arrivals, mut reached, mut tx) = (0u64, 0u64, 0u64);
    for m in msgs.filter(|m| m.counted) {
        r.messages += 1;
        r.expected += m.expected;
        let got = m.deliveries.len() as u64;
        r.delivered += got;
        reached += got;
        arrivals += m.arrivals;
        tx += m.transmissions;
        hops.extend_from_slice(&m.hops);
        latency.extend_from_slice(&m.latency);
    }
    r.delivery_ratio = if r.expected == 0 {
        1.0
    } else {
        r.delivered as f64 / r.expected as f64
    };
    r.hops = Percentiles::of(hops);
    r.latency_ms = Percentiles::of(latency);
    // Every node reached received at least one copy; the rest are duplicates. Directed packets
    // are also received by relays, so for them this counts relay copies too.
    r.duplicates_per_node = if reached == 0 {
        0.0
    } else {
        arrivals.saturating_sub(reached) as f64 / reached as f64
    };
    r.transmissions_per_message = if r.messages == 0 {
        0.0
    } else {
        tx as f64 / r.messages as f64
    };
    r.transmissions_per_delivery = if r.delivered == 0 {
        0.0
    } else {
        tx as f64 / r.delivered as f64
    };
    r
}

impl World<'_> {
    pub(crate) fn report(&self) -> SimReport {
        let broadcast = traffic(self.msgs.iter().filter(|m| m.dest.is_none()));
        let directed = traffic(self.msgs.iter().filter(|m| m.dest.is_some()));
        let b: Vec<&Msg> = self
            .msgs
            .iter()
            .filter(|m| m.dest.is_none() && m.counted)
            .collect();
        let naive: u64 = b.iter().map(|m| m.naive).sum();
        let ours: u64 = b.iter().map(|m| m.transmissions).sum();
        let naive_per = if b.is_empty() {
            0.0
        } else {
            naive as f64 / b.len() as f64
        };
        let partition = self.cfg.partition.then(|| {
            let heal = self.cfg.partition_start + self.cfg.partition_time;
            let across: Vec<&Msg> = self
                .msgs
                .iter()
                .filter(|m| m.across_wall && m.counted)
                .collect();
            PartitionReport {
                stored_across: across.len() as u64,
                delivered_after_heal: across.iter().filter(|m| !m.deliveries.is_empty()).count()
                    as u64,
                delivered_twice: across
                    .iter()
                    .filter(|m| m.deliveries.values().any(|&c| c > 1))
                    .count() as u64,
                from_s: self.cfg.partition_start.as_secs_f64(),
                to_s: heal.as_secs_f64(),
            }
        });
        let mut stats = crate::Stats::default();
        for n in &self.nodes {
            let s = n.mesh.stats();
            stats.suppressed += s.suppressed;
            stats.store_forwards += s.store_forwards;
            stats.overloaded += s.overloaded;
        }
        SimReport {
            nodes: self.nodes.len(),
            seed: self.cfg.seed,
            churn: self.cfg.churn,
            topology: self.summary.clone(),
            broadcast,
            directed,
            naive_transmissions_per_broadcast: naive_per,
            transmissions_vs_naive: if naive == 0 {
                0.0
            } else {
                ours as f64 / naive as f64
            },
            duplicate_deliveries: self.duplicate_deliveries,
            churn_events: self.churn_events,
            partition,
            memory_peak: self.memory,
            suppressed_relays: stats.suppressed,
            store_forwards: stats.store_forwards,
            overloaded: stats.overloaded,
            simulated_s: self.now.as_secs_f64(),
        }
    }
}
