//! Sans-IO policies: plain structs with no I/O, no locks and no clock reads.
//!
//! Every method that depends on time takes `now: Instant` as an argument, so the async shells
//! that own these policies decide what "now" is, and tests drive time by hand. Every table keyed
//! by remote input is capped, and no input (counter, duration, limit or address) can make a
//! policy panic or overflow.
//!
//! - [`ConnectionLimiter`]: admission of inbound and outbound connections (per-source rate,
//!   failure cooldown with capped exponential backoff, handshakes in flight, per-peer and total
//!   connection limits).
//! - [`TokenBucket`] and [`RateLimiter`]: per-key message and byte rate limiting.
//! - [`ReplayWindow`]: RFC 6479 anti-replay window for datagram counters.

mod limiter;
pub(crate) mod lru_table;
mod replay_window;
mod token_bucket;

pub use limiter::{
    ConnectionLimiter, ConnectionLimits, Direction, LimitKind, LimitRejection, SourceKey,
};
pub use replay_window::ReplayWindow;
pub use token_bucket::{RateLimiter, RateLimits, TokenBucket};
