//! A discrete-event simulator that runs many [`Mesh`](crate::Mesh) engines over simulated radio
//! links in virtual time.
//!
//! [`run`] places nodes on a square plane (kept to its largest connected component), links each
//! to random in-range neighbours up to a per-node cap, then sends broadcast and directed
//! traffic (each directed request gets a directed reply) while nodes may leave and rejoin
//! (churn) and a wall may split the plane for a while (partition). Links carry one packet at a
//! time per direction: air time per byte plus a latency. Everything is drawn from one seed, so a
//! seed replays the same run. The report ([`SimReport`]) gives delivery ratios, hops, latency,
//! duplicates, transmissions against naive flooding on the same graph, and peak cache sizes.

mod dynamics;
mod metrics;
mod report;
mod topology;
mod traffic;
mod world;

use std::time::Duration;

use serde::Serialize;

use crate::config::MeshConfig;

pub use metrics::{Percentiles, SimReport};

/// Settings of one simulation run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Nodes placed (the run keeps the largest connected component).
    pub nodes: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Radio range in metres.
    pub range: f64,
    /// Links per node at most (BLE: 7).
    pub link_cap: usize,
    /// Nodes expected within range of a node: sets the plane's size.
    pub density: f64,
    /// Fraction of nodes leaving (and as many rejoining) per simulated minute.
    pub churn: f64,
    /// How long a node that left stays away.
    pub offline_time: Duration,
    /// Split the plane in two halves for `partition_time` from `partition_start`.
    pub partition: bool,
    /// When the partition starts.
    pub partition_start: Duration,
    /// How long it lasts.
    pub partition_time: Duration,
    /// Broadcasts sent.
    pub broadcasts: usize,
    /// Directed requests sent (each gets one reply).
    pub directed: usize,
    /// Traffic is sent during this window (from 1 s on).
    pub send_window: Duration,
    /// Time simulated after the window, for late deliveries.
    pub drain: Duration,
    /// Plaintext bytes per message.
    pub payload_len: usize,
    /// Link throughput in bits per second (BLE LE 1M: 700 000).
    pub bits_per_second: u64,
    /// Bytes of link-layer overhead per packet.
    pub packet_overhead: usize,
    /// Fixed latency per packet (the connection interval).
    pub latency: Duration,
    /// Extra random latency per packet, uniform in `[0, latency_jitter]`.
    pub latency_jitter: Duration,
    /// Delay before a node that lost a link looks for a new one.
    pub relink_delay: Duration,
    /// Every engine's settings.
    pub mesh: MeshConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 100,
            seed: 1,
            range: 30.0,
            link_cap: 7,
            density: 40.0,
            churn: 0.0,
            offline_time: Duration::from_secs(30),
            partition: false,
            partition_start: Duration::from_secs(10),
            partition_time: Duration::from_secs(30),
            broadcasts: 20,
            directed: 200,
            send_window: Duration::from_secs(60),
            drain: Duration::from_secs(30),
            payload_len: 64,
            bits_per_second: 700_000,
            packet_overhead: 7,
            latency: Duration::from_millis(10),
            latency_jitter: Duration::from_millis(10),
            relink_delay: Duration::from_secs(1),
            mesh: MeshConfig::default(),
        }
    }
}

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The mesh settings are invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Too few nodes to simulate.
    #[error("need at least 2 nodes")]
    TooFewNodes,
}

/// The topology a run started from.
#[derive(Clone, Debug, Serialize)]
pub struct TopologySummary {
    /// Nodes placed.
    pub placed: usize,
    /// Nodes kept (the largest connected component).
    pub kept: usize,
    /// Side of the square plane in metres.
    pub side: f64,
    /// Links at the start.
    pub links: usize,
    /// Mean links per node.
    pub mean_degree: f64,
    /// Longest shortest path, in hops, at the start.
    pub diameter: usize,
}

/// Runs one simulation.
pub fn run(config: &SimConfig) -> Result<SimReport, SimError> {
    config.mesh.validate()?;
    if config.nodes < 2 {
        return Err(SimError::TooFewNodes);
    }
    Ok(world::World::new(config).run())
}
