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

    /// Per-peer receive rate limits (see [`CoordinatorConfig::rate_limits`]).
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.config.rate_limits = limits;
        self
    }

    /// The circuit breaker of each route.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.config.breaker = breaker;
        self
    }

    /// The RTT estimator bounds (the adaptive PING timeout).
    pub fn rtt(mut self, rtt: RttConfig) -> Self {
        self.config.rtt = rtt;
        self
    }

    /// How often each connection is PINGed (also the keep-alive).
    pub fn health_interval(mut self, interval: Duration) -> Self {
        self.config.health_interval = interval;
        self
    }

    /// Disconnect peers with no application traffic for this long (`None`: never).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// Dial (connect and handshake) timeout.
    pub fn dial_timeout(mut self, timeout: Duration) -> Self {
        self.config.dial_timeout = timeout;
        self
    }

    /// The per-peer window: unacknowledged messages and bytes.
    pub fn window(mut self, messages: usize, bytes: usize) -> Self {
        self.config.max_unacked = messages;
        self.config.max_unacked_bytes = bytes;
        self
    }

    /// Capacity of the event stream.
    pub fn event_queue(mut self, capacity: usize) -> Self {
        self.config.event_queue = capacity;
        self
    }

    /// Builds the coordinator. Fails with no transport, or with transports of different
    /// identities.
    pub fn build(self) -> Result<TransportCoordinator> {
        let Some(first) = self.transports.first() else {
            return Err(CoordinatorError::Transport(
                bitcraps_transport_core::Error::Backend {
                    backend: "coordinator",
                    message: "no transport configured".into(),
                },
            ));
        };
        let id = first.local_peer_id();
        if self.transports.iter().any(|t| t.local_peer_id() != id) {
            return Err(CoordinatorError::Transport(
                bitcraps_transport_core::Error::Backend {
                    backend: "coordinator",
                    message: "transports have different identities".into(),
                },
            ));
        }
        Ok(TransportCoordinator::new(
            self.transports,
            self.config.sanitized(),
        ))
    }
}
