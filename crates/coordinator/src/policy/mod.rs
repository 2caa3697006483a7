//! Sans-IO policies of the coordinator: plain structs, no tokio, no locks, no clock reads.
//!
//! Every time-dependent call takes `now: Instant` as an argument, so the async shells own the
//! clock and tests stay deterministic.

pub mod circuit_breaker;
pub mod dedup;
pub mod priority;
pub mod rtt;

pub use circuit_breaker::{Admission, BreakerConfig, BreakerState, CircuitBreaker};
pub use dedup::DedupCache;
pub use priority::{Priority, PriorityQueue};
pub use rtt::{RttConfig, RttEstimator};
