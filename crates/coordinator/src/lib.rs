//! # bitcraps-coordinator
//!
//! The [`TransportCoordinator`]: one API over any set of transports (`Arc<dyn Transport>`),
//! with peers reachable over several routes, failover with hysteresis, a circuit breaker per
//! route, health checks with adaptive timeouts, two send priorities, per-peer receive rate
//! limits, concurrent broadcast, a bounded event stream and statistics.
//!
//! A table and a player over the in-process backend (swap in `TcpTransport`, `QuicTransport`,
//! a BLE transport, ... with no other change: each is an `Arc<dyn Transport>`):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
//! use bitcraps_transport_core::Keypair;
//! use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
//!
//! let net = MemoryNetwork::new();
//! let node = || {
//!     let transport = MemoryTransport::new(&net, Keypair::generate());
//!     TransportCoordinator::builder().transport(Arc::new(transport)).build()
//! };
//! let (table, player) = (node()?, node()?);
//! let mut events = table.events().expect("taken once");
//! let bound = table.listen(&"memory://0".parse()?).await?;
//!
//! // List several routes, most preferred first, to fail over between them.
//! player.connect_to_peer(table.local_peer_id(), vec![bound]).await?;
//! let receipt = player
//!     .send_with_receipt(table.local_peer_id(), "bet 5 on 7".into(), Priority::Interactive)
//!     .await?;
//! receipt.await?; // the table's application has it, once
//! while let Some(event) = events.recv().await {
//!     if let CoordinatorEvent::DataReceived { peer, data } = event {
//!         println!("{peer}: {data:?}");
//!         break;
//!     }
//! }
//! player.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! ## Delivery guarantee
//!
//! Every message `send_to_peer` accepts (it returns its [`MessageId`]) ends in exactly one of
//! two ways: the remote application receives it, once; or it is reported undelivered, with its
//! id and the reason, in a [`CoordinatorEvent::Undelivered`] event and to its [`Receipt`] if
//! one was asked for. Messages of one priority reach the remote application in the order they
//! were accepted, across reconnects and failovers. A receiver over its rate limit slows the
//! sender down (flow control); it never acknowledges and drops. See docs/coordinator.md for the
//! session rules and the state machine ([`machine`]).

mod builder;
mod config;
mod coordinator;
pub mod discovery;
pub mod envelope;
mod error;
pub mod event;
mod listener;
pub mod machine;
#[cfg(feature = "metrics")]
pub mod metrics;
mod peer;
pub mod policy;
mod shared;
mod stats;

pub use builder::CoordinatorBuilder;
pub use config::CoordinatorConfig;
pub use coordinator::{ShutdownReport, TransportCoordinator};
pub use discovery::DiscoverySource;
pub use error::{CoordinatorError, Result};
pub use event::{CoordinatorEvent, EventStream};
pub use machine::{
    DisconnectReason, LinkFailure, LocalReason, MessageId, RouteError, RouteFailure,
    UndeliveredReason,
};
pub use peer::{PeerSender, Receipt};
pub use policy::{BreakerConfig, BreakerState, Priority, RttConfig};
pub use stats::{
    ConnectionStats, CoordinatorStats, MessageTotals, PeerConnections, PeerStats, RttHistogram,
    TransportStats, RTT_BUCKETS,
};

pub(crate) use shared::Shared;
