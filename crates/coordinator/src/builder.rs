//! [`CoordinatorBuilder`]: transports and settings in, a [`TransportCoordinator`] out.

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::policy::RateLimits;
use bitcraps_transport_core::{ConnectionLimits, Transport};

use crate::error::{CoordinatorError, Result};
use crate::policy::{BreakerConfig, RttConfig};
use crate::{CoordinatorConfig, TransportCoordinator};

/// Builds a [`TransportCoordinator`]; every setting not given keeps the default documented
/// on [`CoordinatorConfig`].
///
/// ```no_run
/// # async fn demo(tcp: std::sync::Arc<dyn bitcraps_transport_core::Transport>) -> Result<(), Box<dyn std::error::Error>> {
/// use bitcraps_coordinator::TransportCoordinator;
/// let coordinator = TransportCoordinator::builder().transport(tcp).build()?;
/// let bound = coordinator.listen(&"tcp://127.0.0.1:0".parse()?).await?;
/// # let _ = bound; Ok(()) }
/// ```
#[derive(Default)]
pub struct CoordinatorBuilder {
    transports: Vec<Arc<dyn Transport>>,
    config: CoordinatorConfig,
}

impl std::fmt::Debug for CoordinatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorBuilder")
            .field(
                "transports",
                &self.transports.iter().map(|t| t.kind()).collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish()
    }
}

impl CoordinatorBuilder {
    /// Adds a transport. Addresses go to the first transport that `supports()` them, in the
    /// order they were added. Every transport must have the same identity.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transports.push(transport);
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: CoordinatorConfig) -> Self {
        self.config = config;
        self
    }

    /// Coordinator-level connection limits (see [`CoordinatorConfig::limits`]).
    pub fn connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Per-peer receive rate limits, applied as flow control (see [`CoordinatorConfig::rate_limits`]).
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.config.rate_limits = limits;
        self
    }

    /// The receive window granted to each peer (see [`CoordinatorConfig::recv_window`]).
    pub fn recv_window(mut self, messages: u32, bytes: u32) -> Self {
        self.config.recv_window = messages;
        self.config.recv_window_bytes = bytes;
        self
    }

    /// The circuit breaker of each route.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.config.breaker = breaker;
        self
    }

    /// The RTT estimator bounds (the adaptive probe timeout).
    pub fn rtt(mut self, rtt: RttConfig) -> Self {
        self.config.rtt = rtt;
        self
    }

    /// How often each idle connection is probed (also the keep-alive).
    pub fn health_interval(mut self, interval: Duration) -> Self {
        self.config.health_interval = interval;
        self
    }

    /// Health probes missed in a row before a connection is given up.
    pub fn max_missed_pings(mut self, missed: u32) -> Self {
        self.config.max_missed_pings = missed;
        self
    }

    /// Disconnect peers with no application traffic for this long (`None`: never).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// Answered probes in a row before traffic moves back to a more preferred route.
    pub fn switch_back_after(mut self, pongs: u32) -> Self {
        self.config.switch_back_after = pongs;
        self
    }

    /// Dial (connect and handshake) timeout.
    pub fn dial_timeout(mut self, timeout: Duration) -> Self {
        self.config.dial_timeout = timeout;
        self
    }

    /// Happy eyeballs: delay between the starts of two dials of a connect pass.
    pub fn dial_stagger(mut self, delay: Duration) -> Self {
        self.config.dial_stagger = delay;
        self
    }

    /// The per-peer send window: unfinished messages and payload bytes.
    pub fn window(mut self, messages: usize, bytes: usize) -> Self {
        self.config.max_unacked = messages;
        self.config.max_unacked_bytes = bytes;
        self
    }

    /// How long `send_to_peer` waits for room in the window.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.config.send_timeout = timeout;
        self
    }

    /// Capacity of the event stream.
    pub fn event_queue(mut self, capacity: usize) -> Self {
        self.config.event_queue = capacity;
        self
    }

    /// Capacity of each peer's command queue.
    pub fn control_queue(mut self, capacity: usize) -> Self {
        self.config.control_queue = capacity;
        self
    }

    /// Largest transport message built by coalescing envelopes.
    pub fn coalesce_limit(mut self, bytes: usize) -> Self {
        self.config.coalesce_limit = bytes;
        self
    }

    /// Payloads over this many bytes travel as their own transport message (no copy).
    pub fn inline_limit(mut self, bytes: usize) -> Self {
        self.config.inline_limit = bytes;
        self
    }

    /// How long a lone acknowledgement waits for data to ride along with.
    pub fn ack_delay(mut self, delay: Duration) -> Self {
        self.config.ack_delay = delay;
        self
    }

    /// How long a peer's receive state outlives its session, for dedup of a resumed session.
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.config.session_ttl = ttl;
        self
    }

    /// Peers tracked at most.
    pub fn max_peers(mut self, peers: usize) -> Self {
        self.config.max_peers = peers;
        self
    }

    /// Builds the coordinator. Fails with no transport, or with transports of different
    /// identities.
    pub fn build(self) -> Result<TransportCoordinator> {
        let Some(first) = self.transports.first() else {
            return Err(CoordinatorError::NoTransports);
        };
        let id = first.local_peer_id();
        if self.transports.iter().any(|t| t.local_peer_id() != id) {
            return Err(CoordinatorError::MixedIdentities);
        }
        Ok(TransportCoordinator::new(
            self.transports,
            self.config.sanitized(),
        ))
    }
}
