//! [`DiscoveryConfig`]: the table's limits and the auto-connect policy.

use std::time::Duration;

/// The mDNS service type every bitcraps node announces (DNS-SD, RFC 6763).
pub const SERVICE_TYPE: &str = "_bitcraps._udp.local.";

/// Limits of the discovery table and the auto-connect policy. The defaults suit a table of
/// phones on one LAN.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DiscoveryConfig {
    /// Peers the table holds at most (a flood of fake announcements cannot grow it).
    pub max_known: usize,
    /// Peers never heard before that are admitted at once (burst).
    pub new_peer_burst: u32,
    /// Peers never heard before that are admitted per second after the burst.
    pub new_peers_per_second: f64,
    /// How long an announcement is believed when its source gives no lifetime.
    pub default_ttl: Duration,
    /// Lifetimes announced are clamped into this range (a hostile TTL neither pins an entry
    /// forever nor churns it).
    pub ttl_range: (Duration, Duration),
    /// Dial discovered peers on their announced routes, within the limits below. Off: the
    /// application sees the events and dials whom it chooses.
    pub auto_connect: bool,
    /// Peers auto-connect keeps connected or dialing at most.
    pub max_auto_peers: usize,
    /// Dials auto-connect starts at once (burst).
    pub dial_burst: u32,
    /// Dials auto-connect starts per second after the burst.
    pub dials_per_second: f64,
    /// After a failed dial, the first wait before that peer is dialed again (doubling on each
    /// failure up to `retry_max`).
    pub retry_base: Duration,
    /// The longest wait between dials of one peer.
    pub retry_max: Duration,
    /// Of two nodes that discover each other, the one with the smaller peer id dials at once;
    /// the other waits this long for that inbound connection before dialing itself.
    pub yield_delay: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            max_known: 64,
            new_peer_burst: 16,
            new_peers_per_second: 4.0,
            default_ttl: Duration::from_secs(120),
            ttl_range: (Duration::from_secs(5), Duration::from_secs(600)),
            auto_connect: false,
            max_auto_peers: 8,
            dial_burst: 4,
            dials_per_second: 1.0,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            yield_delay: Duration::from_secs(3),
        }
    }
}

impl DiscoveryConfig {
    /// The defaults with auto-connect on.
    pub fn auto_connect() -> Self {
        Self {
            auto_connect: true,
            ..Self::default()
        }
    }
}
