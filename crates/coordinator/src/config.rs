//! [`CoordinatorConfig`]: every knob of the coordinator, with documented defaults.

use std::time::Duration;

use bitcraps_transport_core::policy::RateLimits;
use bitcraps_transport_core::ConnectionLimits;

use crate::policy::{BreakerConfig, RttConfig};

/// Settings of a [`TransportCoordinator`](crate::TransportCoordinator). Every field has a
/// default (see each field); build with [`CoordinatorBuilder`](crate::CoordinatorBuilder).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CoordinatorConfig {
    /// Coordinator-level connection limits, applied to inbound AND outbound connections
    /// across all transports once the remote's identity is proven: `max_total_connections`
    /// (default 100) and `max_connections_per_peer` (default 3). Dial and accept rates,
    /// cooldowns and handshakes in flight are the transports' own limiters' job.
    pub limits: ConnectionLimits,
    /// Per-peer receive rate limits, applied as flow control: a message over the limit waits
    /// (unacknowledged) until the limit lets it through, so the sender's window fills and it
    /// slows down; nothing is dropped (default: 5,000 msg/s with a burst of 20,000, 64 MiB/s
    /// with a burst of 64 MiB).
    pub rate_limits: RateLimits,
    /// Receive window granted to each peer, in messages: how many it may have written beyond
    /// what this side delivered (default 1,024). A peer that writes past it is disconnected
    /// with [`DisconnectReason::FlowControl`](crate::DisconnectReason::FlowControl).
    pub recv_window: u32,
    /// Receive window granted to each peer, in payload bytes (default 16 MiB).
    pub recv_window_bytes: u32,
    /// The circuit breaker of each route (default: 5 failures in a row or > 50 % over 30 s
    /// with at least 10 calls; cooldown 1 s doubling to 60 s; one probe).
    pub breaker: BreakerConfig,
    /// The RTT estimator of each connection, which gives the ping timeout (default: initial
    /// 1 s, min 200 ms, max 60 s).
    pub rtt: RttConfig,
    /// A PING is sent on every connection this often; it is also the keep-alive (default 5 s).
    pub health_interval: Duration,
    /// A connection whose PINGs go unanswered this many times in a row (each within the
    /// RTT estimator's timeout, which doubles per miss) is closed (default 2).
    pub max_missed_pings: u32,
    /// Idle policy, separate from keep-alive: a peer with no application message either way
    /// for this long is disconnected. `None` (default) keeps idle peers.
    pub idle_timeout: Option<Duration>,
    /// Hysteresis: a more preferred route, once reconnected, must answer this many PINGs in a
    /// row before traffic moves back to it (default 3).
    pub switch_back_after: u32,
    /// A dial (connect and handshake) that takes longer fails (default 10 s).
    pub dial_timeout: Duration,
    /// Happy eyeballs: the next route of a connect pass is dialed this long after the
    /// previous one started, without waiting for it to fail (default 250 ms).
    pub dial_stagger: Duration,
    /// Unacknowledged messages per peer (the window, default 1,024); `send_to_peer` waits
    /// while it is full.
    pub max_unacked: usize,
    /// Unacknowledged payload bytes per peer (default 16 MiB); `send_to_peer` waits while it
    /// is full.
    pub max_unacked_bytes: usize,
    /// How long `send_to_peer` waits for room in the window before failing (default 10 s).
    pub send_timeout: Duration,
    /// Capacity of the event stream (default 1,024). Data events wait for room (backpressure);
    /// other events are dropped when it is full and reported as `Lagged`.
    pub event_queue: usize,
    /// Largest transport message built by coalescing envelopes (default 64 KiB; never more
    /// than a connection's own maximum).
    pub coalesce_limit: usize,
    /// Payloads larger than this travel as a transport message of their own over connections
    /// that promise order, so they are never copied (default 8 KiB).
    pub inline_limit: usize,
    /// An acknowledgement with no data to ride along waits this long for some (default 1 ms;
    /// sent at once when a quarter of the receive window was delivered unacknowledged).
    pub ack_delay: Duration,
    /// Capacity of each peer's internal control queue (default 256).
    pub control_queue: usize,
    /// How long the receive state of a peer's session is kept after its last connection is
    /// gone and its state machine ended without a goodbye, so a resumed session is deduped
    /// (default 10 min; at most 4 x `max_peers` sessions are kept).
    pub session_ttl: Duration,
    /// Peers the coordinator tracks at most (default 1,024).
    pub max_peers: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            limits: ConnectionLimits::default(),
            rate_limits: RateLimits {
                messages_per_second: 5_000,
                message_burst: 20_000,
                bytes_per_second: 64 * 1024 * 1024,
                byte_burst: 64 * 1024 * 1024,
                max_keys: 1,
            },
            recv_window: 1_024,
            recv_window_bytes: 16 * 1024 * 1024,
            breaker: BreakerConfig::default(),
            rtt: RttConfig::default(),
            health_interval: Duration::from_secs(5),
            max_missed_pings: 2,
            idle_timeout: None,
            switch_back_after: 3,
            dial_timeout: Duration::from_secs(10),
            dial_stagger: Duration::from_millis(250),
            max_unacked: 1_024,
            max_unacked_bytes: 16 * 1024 * 1024,
            send_timeout: Duration::from_secs(10),
            event_queue: 1_024,
            coalesce_limit: 64 * 1024,
            inline_limit: 8 * 1024,
            ack_delay: Duration::from_millis(1),
            control_queue: 256,
            session_ttl: Duration::from_secs(600),
            max_peers: 1_024,
        }
    }
}

impl CoordinatorConfig {
    /// The configuration with every value clamped to something usable (no zero capacities).
    pub(crate) fn sanitized(mut self) -> Self {
        self.max_unacked = self.max_unacked.clamp(1, 1 << 20);
        self.max_unacked_bytes = self.max_unacked_bytes.clamp(1, u32::MAX as usize);
        self.event_queue = self.event_queue.max(1);
        self.control_queue = self.control_queue.max(8);
        self.max_missed_pings = self.max_missed_pings.max(1);
        self.switch_back_after = self.switch_back_after.max(1);
        self.recv_window = self.recv_window.max(1);
        self.recv_window_bytes = self.recv_window_bytes.max(1);
        self.coalesce_limit = self.coalesce_limit.max(1024);
        self.max_peers = self.max_peers.max(1);
        if self.health_interval.is_zero() {
            self.health_interval = Duration::from_millis(1);
        }
        self
    }
}
