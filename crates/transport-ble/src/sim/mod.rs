//! A deterministic simulated BLE radio implementing the link layer.
//!
//! [`SimRadio`] is the shared medium (seeded RNG, partitions, counters); each [`SimDevice`] on
//! it is a [`BleAdapter`](crate::link::BleAdapter) in both roles. What it models:
//!
//! * advertising and scanning: a scan reports every advertiser of its service in the same
//!   partition at once, and each advertiser that starts (or comes into range) later;
//! * connect: the target must advertise and listen, both ends must be under their link cap
//!   (default 7, like Android), and both in one partition; the link is up after
//!   [`SimConfig::connect_latency`]. A real radio shows an unreachable or silent target as a
//!   timeout; the simulator fails at once with a typed error, which tests can tell apart;
//! * per-link MTU: the smaller of both devices' maximum (23..=517);
//! * air time at a [`LinkRate`] (1M and 2M PHY presets), shared by all links of a device and by
//!   both directions of a link, enforced by tokio sleeps: run tests under
//!   `tokio::time::pause()` and they are instant and deterministic;
//! * packet loss that the link layer retransmits: each lost attempt costs air time; order and
//!   data are kept; after [`SimConfig::max_attempts`] the link drops;
//! * link drops: [`SimRadio::drop_link`], a random per-packet drop probability, partitions
//!   ([`SimRadio::set_partition`]) and devices leaving (dropping a [`SimDevice`]).
//!
//! No busy loops and no unbounded queues: every task waits on a queue, a timer or a state change.

mod air;
mod config;
mod device;
mod discovery;
mod radio;
pub(crate) mod rng;
mod stats;

pub use config::{LinkRate, SimConfig, SimDeviceConfig, PACKET_OVERHEAD};
pub use device::SimDevice;
pub use radio::SimRadio;
pub use stats::SimStats;
