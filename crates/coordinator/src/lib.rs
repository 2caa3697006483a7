//! # bitcraps-coordinator
//!
//! The [`TransportCoordinator`]: one API over any set of transports (`Arc<dyn Transport>`),
//! with peers reachable over several routes, failover with hysteresis, a circuit breaker per
//! route, health checks with adaptive timeouts, two send priorities, per-peer receive rate
//! limits, concurrent broadcast, a bounded event stream and statistics.
//!
//! ```no_run
//! # async fn demo(tcp: std::sync::Arc<dyn bitcraps_transport_core::Transport>,
//! #               mem: std::sync::Arc<dyn bitcraps_transport_core::Transport>,
//! #               peer: bitcraps_transport_core::PeerId) -> Result<(), Box<dyn std::error::Error>> {
//! use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
//! let coordinator = TransportCoordinator::builder().transport(tcp).transport(mem).build()?;
//! let mut events = coordinator.events().expect("taken once");
//! let bound = coordinator.listen(&"tcp://127.0.0.1:0".parse()?).await?;
//! coordinator
//!     .connect_to_peer(peer, vec!["memory://7".parse()?, "tcp://127.0.0.1:8765".parse()?])
//!     .await?;
//! coordinator.send_to_peer(peer, "bet 5 on 7".into(), Priority::Interactive).await?;
//! while let Some(event) = events.recv().await {
//!     if let CoordinatorEvent::DataReceived { peer, data } = event {
//!         println!("{peer}: {data:?}");
//!     }
//! }
//! # let _ = bound; Ok(()) }
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
