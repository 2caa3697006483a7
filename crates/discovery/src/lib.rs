//! # bitcraps-discovery
//!
//! Finding peers with no address typed: LAN discovery over mDNS/DNS-SD ([`mdns`]) and BLE
//! discovery from mesh links made to advertising devices ([`ble`]), both feeding one
//! [`Discovery`] service that reports `PeerDiscovered` / `PeerLost` through the coordinator's
//! event stream and, when asked, connects to what it found within limits.
//!
//! Each node announces its [`Ticket`](bitcraps_transport_core::Ticket) (peer id and routes)
//! in DNS-SD TXT records ([`txt`], `docs/protocol.md` §13). Nothing announced is trusted:
//! every dial expects the announced peer id, so the handshake proves it. The table is capped,
//! new peers are admitted at a bounded rate, and dials are limited (see [`machine`]).
//!
//! The split follows the project's style: [`DiscoveryMachine`] is the sans-IO core (every
//! method takes `now`), [`Discovery`] the thin async shell around it, and the sources
//! ([`MdnsDiscovery`], [`ble::BleDiscovery`]) turn what the network says into its inputs.

#[cfg(feature = "ble")]
pub mod ble;
mod config;
pub mod machine;
pub mod mdns;
mod service;
pub mod txt;

pub use bitcraps_coordinator::DiscoverySource;
pub use config::{DiscoveryConfig, SERVICE_TYPE};
pub use machine::{DiscoveryMachine, DiscoveryOutput, DiscoveryStats, Refusal};
pub use mdns::{Interfaces, MdnsConfig, MdnsDiscovery, MdnsError};
pub use service::{Discovery, DiscoveryInput, DiscoverySender, KnownPeer, INPUT_QUEUE};
pub use txt::TxtError;
