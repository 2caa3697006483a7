//! What the simulator measures, and the report it prints.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::TopologySummary;
use crate::engine::MemoryUsage;

/// The 50th and 99th percentiles and the maximum of a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Percentiles {
    pub(crate) fn of(mut sample: Vec<f64>) -> Self {
        if sample.is_empty() {
            return Self::default();
        }
        sample.sort_by(f64::total_cmp);
        let at = |q: f64| sample[((sample.len() - 1) as f64 * q).round() as usize];
        Self {
            p50: at(0.5),
            p99: at(0.99),
            max: sample[sample.len() - 1],
        }
    }
}

/// Figures for one kind of traffic.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrafficReport {
    /// Messages counted (origin and destination online at send time).
    pub messages: u64,
    /// Deliveries expected (broadcast: nodes reachable from the origin at send time).
    pub expected: u64,
    /// Deliveries that happened (first delivery per node and message).
    pub delivered: u64,
    /// delivered / expected.
    pub delivery_ratio: f64,
    /// Hops of the deliveries.
    pub hops: Percentiles,
    /// Latency of the deliveries, in milliseconds.
    pub latency_ms: Percentiles,
    /// Copies of a message a node received beyond the first, per node reached and message.
    pub duplicates_per_node: f64,
    /// Link transmissions per message.
    pub transmissions_per_message: f64,
    /// Link transmissions per delivery.
    pub transmissions_per_delivery: f64,
}

/// Store-and-forward across a partition.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PartitionReport {
    /// Directed messages sent across the wall while it stood.
    pub stored_across: u64,
    /// Of those, delivered (all after the heal).
    pub delivered_after_heal: u64,
    /// Of those, delivered to the application more than once.
    pub delivered_twice: u64,
    /// When the wall stood, in seconds from the start.
    pub from_s: f64,
    /// When it fell.
    pub to_s: f64,
}

/// The largest value of each memory figure over every node and every instant.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct MemoryPeak {
    /// Duplicate cache entries.
    pub dedup_entries: usize,
    /// Routes.
    pub routes: usize,
    /// Pending relays.
    pub pending_relays: usize,
    /// Stored packets.
    pub stored_packets: usize,
    /// Stored bytes.
    pub stored_bytes: usize,
    /// Queued actions.
    pub queued_actions: usize,
}

impl MemoryPeak {
    pub(crate) fn update(&mut self, m: &MemoryUsage) {
        self.dedup_entries = self.dedup_entries.max(m.dedup_entries);
        self.routes = self.routes.max(m.routes);
        self.pending_relays = self.pending_relays.max(m.pending_relays);
        self.stored_packets = self.stored_packets.max(m.stored_packets);
        self.stored_bytes = self.stored_bytes.max(m.stored_bytes);
        self.queued_actions = self.queued_actions.max(m.queued_actions);
    }

    /// A rough upper bound of one node's cache memory at these peaks, in bytes.
    pub fn estimated_bytes(&self) -> usize {
        self.dedup_entries * 120
            + self.routes * 80
            + self.pending_relays * 400
            + self.stored_packets * 200
            + self.stored_bytes
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimReport {
    /// The settings that matter for reading the figures.
    pub nodes: usize,
    /// The seed.
    pub seed: u64,
    /// Fraction of nodes leaving per simulated minute.
    pub churn: f64,
    /// The starting topology.
    pub topology: Option<TopologySummary>,
    /// Broadcast traffic.
    pub broadcast: TrafficReport,
    /// Directed traffic (requests and replies).
    pub directed: TrafficReport,
    /// Naive flooding's link transmissions per broadcast on the same graphs.
    pub naive_transmissions_per_broadcast: f64,
    /// Our transmissions per broadcast divided by naive flooding's.
    pub transmissions_vs_naive: f64,
    /// Deliveries to an application of a message it already had (must be 0).
    pub duplicate_deliveries: u64,
    /// Nodes that left (and as many rejoined).
    pub churn_events: u64,
    /// The partition, if any.
    pub partition: Option<PartitionReport>,
    /// Peak cache sizes on any node.
    pub memory_peak: MemoryPeak,
    /// Relays cancelled by suppression, over all nodes.
    pub suppressed_relays: u64,
    /// Stored packets sent when a path appeared, over all nodes.
    pub store_forwards: u64,
    /// Packets dropped for lack of room, over all nodes.
    pub overloaded: u64,
    /// Simulated time in seconds.
    pub simulated_s: f64,
}

fn pct(p: &Percentiles, unit: &str) -> String {
    format!(
        "p50 {:.1}{unit} p99 {:.1}{unit} max {:.1}{unit}",
        p.p50, p.p99, p.max
    )
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "mesh simulation: {} nodes, seed {}, churn {:.0}%/min",
            self.nodes,
            self.seed,
            self.churn * 100.0
        )?;
        if let Some(t) = &self.topology {
            writeln!(
                f,
                "  topology: placed {}, kept {} (largest component), side {:.0} m, {} links, mean degree {:.2}, diameter {} hops",
                t.placed, t.kept, t.side, t.links, t.mean_degree, t.diameter
            )?;
        }
        for (name, r) in [("broadcast", &self.broadcast), ("directed", &self.directed)] {
            writeln!(
                f,
                "  {name}: {} messages, delivered {}/{} = {:.3}%",
                r.messages,
                r.delivered,
                r.expected,
                r.delivery_ratio * 100.0
            )?;
            writeln!(
                f,
                "    hops {}; latency {}",
                pct(&r.hops, ""),
                pct(&r.latency_ms, " ms")
            )?;
            writeln!(
                f,
                "    duplicates per node per message {:.2}; transmissions per message {:.1}, per delivery {:.2}",
                r.duplicates_per_node, r.transmissions_per_message, r.transmissions_per_delivery
            )?;
        }
        writeln!(
            f,
            "  naive flooding on the same graphs: {:.1} transmissions per broadcast; ours = {:.3}x naive",
            self.naive_transmissions_per_broadcast, self.transmissions_vs_naive
        )?;
        writeln!(
            f,
            "  duplicate deliveries to applications: {}",
            self.duplicate_deliveries
        )?;
        if self.churn_events > 0 {
            writeln!(f, "  churn: {} nodes left and rejoined", self.churn_events)?;
        }
        if let Some(p) = &self.partition {
            writeln!(
                f,
                "  partition {:.0}-{:.0} s: {} directed sent across, {} delivered after the heal, {} delivered twice",
                p.from_s, p.to_s, p.stored_across, p.delivered_after_heal, p.delivered_twice
            )?;
        }
        let m = &self.memory_peak;
        writeln!(
            f,
            "  peak per node: dedup {} entries, routes {}, pending relays {}, store {} packets / {} bytes, queued actions {} (~{} KiB)",
            m.dedup_entries,
            m.routes,
            m.pending_relays,
            m.stored_packets,
            m.stored_bytes,
            m.queued_actions,
            m.estimated_bytes() / 1024
        )?;
        write!(
            f,
            "  relays suppressed {}, store forwards {}, overloaded drops {}, simulated {:.0} s",
            self.suppressed_relays, self.store_forwards, self.overloaded, self.simulated_s
        )
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
