//! The engine's settings and their defaults (see `docs/mesh.md` for why each default).

use std::time::Duration;

/// How a node relays a flooded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayPolicy {
    /// Naive flooding: relay every new packet at once on every link but the arrival link.
    /// For comparison only.
    Flood,
    /// Wait a random delay in `[min_delay, max_delay]`, count the copies heard meanwhile,
    /// then send on at most `fanout` of the links that still need it (see `docs/mesh.md`); if
    /// at least `threshold` copies arrived, only to neighbours with fewer than `protect_degree`
    /// links (they have few other sources), and cancel if there are none.
    Suppressed {
        /// Shortest relay delay.
        min_delay: Duration,
        /// Longest relay delay.
        max_delay: Duration,
        /// Copies heard (the first included) that cancel the relay.
        threshold: u8,
        /// Most links one relay sends on.
        fanout: u8,
        /// Neighbours with fewer links than this are sent to even by a suppressed relay.
        protect_degree: u8,
    },
}

/// Caps of the store-and-forward buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Packets held in total.
    pub max_packets: usize,
    /// Encoded bytes held in total.
    pub max_bytes: usize,
    /// Packets held per origin.
    pub max_packets_per_origin: usize,
    /// Encoded bytes held per origin.
    pub max_bytes_per_origin: usize,
    /// Age after which a held packet is dropped.
    pub max_age: Duration,
}

/// Settings of a [`Mesh`](crate::Mesh).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshConfig {
    /// TTL of the packets this node originates, and the most `ttl + hops` accepted.
    pub max_ttl: u8,
    /// Entries of the duplicate cache.
    pub dedup_capacity: usize,
    /// Entries of the duplicate cache one origin may hold.
    pub dedup_per_origin: usize,
    /// How long a seen packet is remembered; also the longest a packet may take end to end.
    pub dedup_expiry: Duration,
    /// Learned routes kept.
    pub route_capacity: usize,
    /// How long a learned route is used without fresh traffic from its peer.
    pub route_expiry: Duration,
    /// Relays waiting for their delay at once.
    pub max_pending_relays: usize,
    /// Actions queued for the caller before transmissions are dropped.
    pub max_queued_actions: usize,
    /// How flooded packets are relayed.
    pub relay: RelayPolicy,
    /// Delay between a link change and our neighbour list going out (changes coalesce).
    pub hello_delay: Duration,
    /// Store-and-forward caps.
    pub store: StoreLimits,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            max_ttl: 24,
            dedup_capacity: 8192,
            dedup_per_origin: 1024,
            dedup_expiry: Duration::from_secs(300),
            route_capacity: 1024,
            route_expiry: Duration::from_secs(60),
            max_pending_relays: 512,
            max_queued_actions: 4096,
            relay: RelayPolicy::Suppressed {
                min_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                threshold: 3,
                fanout: 8,
                protect_degree: 3,
            },
            hello_delay: Duration::from_millis(50),
            store: StoreLimits {
                max_packets: 256,
                max_bytes: 256 * 1024,
                max_packets_per_origin: 32,
                max_bytes_per_origin: 32 * 1024,
                max_age: Duration::from_secs(120),
            },
        }
    }
}

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A packet could outlive its dedup entry, and be delivered twice.
    #[error("store max_age plus relay delays must be shorter than dedup_expiry")]
    StoreOutlivesDedup,
    /// A capacity of zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// min_delay > max_delay.
    #[error("relay min_delay exceeds max_delay")]
    DelayRange,
}

impl MeshConfig {
    /// Checks the settings' invariants.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("dedup_capacity", self.dedup_capacity),
            ("dedup_per_origin", self.dedup_per_origin),
            ("route_capacity", self.route_capacity),
            ("max_pending_relays", self.max_pending_relays),
            ("max_queued_actions", self.max_queued_actions),
            ("max_ttl", usize::from(self.max_ttl)),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        let max_delay = match self.relay {
            RelayPolicy::Flood => Duration::ZERO,
            RelayPolicy::Suppressed {
                min_delay,
                max_delay,
                ..
            } => {
                if min_delay > max_delay {
                    return Err(ConfigError::DelayRange);
                }
                max_delay
            }
        };
        // A packet's life: relay delays on at most max_ttl hops, plus one stay of at most
        // max_age in a store (a packet that left a store carries FLAG_STORED and is never
        // stored again). Every node must remember it for longer than that.
        let life = self.store.max_age + max_delay * u32::from(self.max_ttl);
        if life >= self.dedup_expiry {
            return Err(ConfigError::StoreOutlivesDedup);
        }
        Ok(())
    }
}
