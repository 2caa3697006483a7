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
//! Every application message is carried in a `DATA` envelope with a 64-bit id (see
//! [`envelope`]). The receiver acknowledges an id once the message has been handed to its
//! application (put in the event stream) or recognized as a duplicate; the sender keeps every
//! unacknowledged message (a window of `max_unacked` messages and `max_unacked_bytes` bytes
//! per peer; `send_to_peer` waits while it is full) and, whenever traffic moves to another
//! connection, resends all of them, in id order, before anything new.
//!
//! - **At least once on the wire**: a message accepted by `send_to_peer` is written until one
//!   connection delivers it and the receiver acknowledges it, as long as the peer is not
//!   disconnected (a `Disconnected` event drops what was still queued or unacknowledged).
//! - **Exactly once to the application, per message id, within the dedup window**: the
//!   receiver remembers the last 4 x `max_unacked` ids of each peer for `dedup_ttl`; every
//!   resent id is within that window, so a duplicate is acknowledged and dropped. The dedup
//!   state lives as long as the peer's session: a receiver keeps a peer with no connection for
//!   a grace period (dial timeout + health interval) before it disconnects it.
//! - **Order**: messages of the same priority to the same peer are delivered in the order
//!   `send_to_peer` accepted them, across failovers. An interactive message may overtake bulk
//!   ones (that is its purpose), except bulk ones already handed to a connection or queued
//!   for resending.
//! - Messages dropped by the receive rate limit are acknowledged and never delivered (the
//!   guarantee holds for traffic within the receiver's limits).

mod builder;
mod config;
mod coordinator;
pub mod envelope;
mod error;
pub mod event;
mod listener;
mod peer;
pub mod policy;
mod shared;
mod stats;

pub use builder::CoordinatorBuilder;
pub use config::CoordinatorConfig;
pub use coordinator::{ShutdownReport, TransportCoordinator};
pub use error::{CoordinatorError, Result};
pub use event::{CoordinatorEvent, DisconnectReason, EventStream};
pub use peer::PeerSender;
pub use policy::{BreakerConfig, BreakerState, Priority, RttConfig};
pub use stats::{ConnectionStats, CoordinatorStats, PeerConnections, PeerStats, TransportStats};

pub(crate) use shared::Shared;
