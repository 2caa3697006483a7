//! [`DiscoveryMachine`]: the sans-IO core of discovery. It takes announcements, withdrawals,
//! the set of connected peers and dial results, each with `now`, and produces
//! [`DiscoveryOutput`]s: `Discovered` / `Lost` for the application and, with auto-connect on,
//! `Dial` for the shell to carry out. It reads no clock and does no I/O.
//!
//! Bounds: the table holds at most `max_known` peers; peers never heard before are admitted
//! through a token bucket, so a flood of fake identities is slowed to `new_peers_per_second`
//! and, once the table is full, can only displace entries that are neither connected nor
//! being dialed (each displaced one is reported `Lost`). Dials are limited three ways: peers
//! connected or dialing at most `max_auto_peers`, a dial-rate bucket, and per-peer backoff.
//! The outputs waiting are at most three per entry (table size bounded), and the shell drains
//! them after every call.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bitcraps_coordinator::DiscoverySource;
use bitcraps_transport_core::policy::TokenBucket;
use bitcraps_transport_core::{PeerId, TransportAddress};

use crate::DiscoveryConfig;

/// What the machine asks of its shell and tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryOutput {
    /// A peer is known now, or its routes changed.
    Discovered {
        /// The peer.
        peer: PeerId,
        /// Its routes, most preferred first.
        routes: Vec<TransportAddress>,
        /// Where it was heard.
        source: DiscoverySource,
    },
    /// A known peer expired, was withdrawn, or was displaced from a full table.
    Lost {
        /// The peer.
        peer: PeerId,
        /// Where it had been heard.
        source: DiscoverySource,
    },
    /// Auto-connect: dial `peer` over `routes`, expecting its identity, and report the result
    /// with [`DiscoveryMachine::dial_finished`].
    Dial {
        /// The peer.
        peer: PeerId,
        /// Its routes.
        routes: Vec<TransportAddress>,
    },
}

/// Why an announcement was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The announcement is of this node itself.
    Own,
    /// No routes.
    NoRoutes,
    /// Too many new peers lately (the admission bucket is empty).
    Rate,
    /// The table is full of peers that are connected or being dialed.
    Full,
}

/// What the machine counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// Announcements taken (new peers and refreshes).
    pub announcements: u64,
    /// Announcements refused because too many new peers arrived lately.
    pub refused_rate: u64,
    /// Announcements refused because the table was full of busy peers.
    pub refused_full: u64,
    /// Entries displaced from a full table by a new peer.
    pub evicted: u64,
    /// Entries that expired.
    pub expired: u64,
    /// Dials asked for.
    pub dials: u64,
    /// Dials that failed.
    pub dial_failures: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    routes: Vec<TransportAddress>,
    source: DiscoverySource,
    expires: Instant,
    connected: bool,
    /// When auto-connect may dial it next.
    dial_at: Instant,
    failures: u32,
}

/// The discovery table and auto-connect policy. See the module docs.
#[derive(Debug)]
pub struct DiscoveryMachine {
    local: PeerId,
    config: DiscoveryConfig,
    entries: HashMap<PeerId, Entry>,
    admission: TokenBucket,
    dial_rate: TokenBucket,
    /// Peers the coordinator has a session with (from [`Self::set_connected`]).
    connected: HashSet<PeerId>,
    /// Dials asked for and not finished (kept when the entry goes, so the bound holds).
    in_flight: HashSet<PeerId>,
    out: VecDeque<DiscoveryOutput>,
    stats: DiscoveryStats,
}

impl DiscoveryMachine {
    /// An empty table for the node `local`.
    pub fn new(local: PeerId, mut config: DiscoveryConfig, now: Instant) -> Self {
        config.max_known = config.max_known.max(1);
        if config.ttl_range.0 > config.ttl_range.1 {
            config.ttl_range = (config.ttl_range.1, config.ttl_range.0);
        }
        let admission = TokenBucket::new(
            config.new_peer_burst.max(1),
            config.new_peers_per_second,
            now,
        );
        let dial_rate = TokenBucket::new(config.dial_burst.max(1), config.dials_per_second, now);
        Self {
            local,
            config,
            entries: HashMap::new(),
            admission,
            dial_rate,
            connected: HashSet::new(),
            in_flight: HashSet::new(),
            out: VecDeque::new(),
            stats: DiscoveryStats::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// `peer` announced `routes` over `source`, to be believed for `ttl` (the source's record
    /// lifetime; `None`: the configured default). Returns why it was not taken, if it was not.
    pub fn on_announce(
        &mut self,
        now: Instant,
        peer: PeerId,
        mut routes: Vec<TransportAddress>,
        source: DiscoverySource,
        ttl: Option<Duration>,
    ) -> Result<(), Refusal> {
        if peer == self.local {
            return Err(Refusal::Own);
        }
        routes.truncate(bitcraps_transport_core::MAX_TICKET_ROUTES);
        if routes.is_empty() {
            return Err(Refusal::NoRoutes);
        }
        let (lo, hi) = self.config.ttl_range;
        let ttl = ttl.unwrap_or(self.config.default_ttl).clamp(lo, hi);
        let expires = now.checked_add(ttl).unwrap_or(now);
        if let Some(entry) = self.entries.get_mut(&peer) {
            self.stats.announcements += 1;
            entry.expires = expires;
            if entry.routes != routes || entry.source != source {
                entry.routes = routes.clone();
                entry.source = source;
                self.out.push_back(DiscoveryOutput::Discovered {
                    peer,
                    routes,
                    source,
                });
            }
            self.plan_dials(now);
            return Ok(());
        }
        if self.entries.len() >= self.config.max_known && self.evictable().is_none() {
            self.stats.refused_full += 1;
            return Err(Refusal::Full);
        }
        if self.admission.try_take(1, now).is_err() {
            self.stats.refused_rate += 1;
            return Err(Refusal::Rate);
        }
        if self.entries.len() >= self.config.max_known {
            if let Some(victim) = self.evictable() {
                if let Some(old) = self.entries.remove(&victim) {
                    self.stats.evicted += 1;
                    self.out.push_back(DiscoveryOutput::Lost {
                        peer: victim,
                        source: old.source,
                    });
                }
            }
        }
        self.stats.announcements += 1;
        // Of two nodes that hear each other, the smaller id dials first (one connection, not
        // two crossing); the larger dials only if none arrived within the yield delay.
        let dial_at = if self.local < peer {
            now
        } else {
            now.checked_add(self.config.yield_delay).unwrap_or(now)
        };
        self.entries.insert(
            peer,
            Entry {
                routes: routes.clone(),
                source,
                expires,
                connected: self.connected.contains(&peer),
                dial_at,
                failures: 0,
            },
        );
        self.out.push_back(DiscoveryOutput::Discovered {
            peer,
            routes,
            source,
        });
        self.plan_dials(now);
        Ok(())
    }

    /// `peer` withdrew its announcement over `source` (an mDNS goodbye, a lost BLE link).
    pub fn on_withdraw(&mut self, now: Instant, peer: PeerId, source: DiscoverySource) {
        if self.entries.get(&peer).is_some_and(|e| e.source == source) {
            self.entries.remove(&peer);
            self.out.push_back(DiscoveryOutput::Lost { peer, source });
        }
        self.plan_dials(now);
    }

    /// The peers the coordinator has a session with now. A peer that left this set is dialed
    /// again (after `retry_base`) while it is still announced.
    pub fn set_connected(&mut self, now: Instant, peers: impl IntoIterator<Item = PeerId>) {
        self.connected = peers.into_iter().collect();
        let retry = now.checked_add(self.config.retry_base).unwrap_or(now);
        for (peer, entry) in &mut self.entries {
            let connected = self.connected.contains(peer);
            if entry.connected && !connected {
                entry.dial_at = entry.dial_at.max(retry);
            }
            entry.connected = connected;
        }
        self.plan_dials(now);
    }

    /// A dial asked for by [`DiscoveryOutput::Dial`] ended: `ok` if the peer proved its
    /// identity over one of the routes.
    pub fn dial_finished(&mut self, now: Instant, peer: PeerId, ok: bool) {
        self.in_flight.remove(&peer);
        if let Some(entry) = self.entries.get_mut(&peer) {
            if ok {
                entry.connected = true;
                entry.failures = 0;
            } else {
                self.stats.dial_failures += 1;
                entry.failures = entry.failures.saturating_add(1);
                let shift = entry.failures.saturating_sub(1).min(16);
                let wait = self
                    .config
                    .retry_base
                    .saturating_mul(1u32 << shift)
                    .min(self.config.retry_max);
                entry.dial_at = now.checked_add(wait).unwrap_or(now);
            }
        } else if !ok {
            self.stats.dial_failures += 1;
        }
        self.plan_dials(now);
    }

    /// Expires entries and starts dials that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<PeerId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            if let Some(e) = self.entries.remove(&peer) {
                self.stats.expired += 1;
                self.out.push_back(DiscoveryOutput::Lost {
                    peer,
                    source: e.source,
                });
            }
        }
        self.plan_dials(now);
    }

    /// When [`Self::handle_timeout`] has work next: the earliest expiry, or dial due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let dial = (self.room() > 0)
            .then(|| {
                self.entries
                    .iter()
                    .filter(|(p, e)| !e.connected && !self.in_flight.contains(p))
                    .map(|(_, e)| e.dial_at)
                    .min()
            })
            .flatten();
        let expiry = self.entries.values().map(|e| e.expires).min();
        match (dial, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<DiscoveryOutput> {
        self.out.pop_front()
    }

    /// Peers known now, with their routes and source.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, &[TransportAddress], DiscoverySource)> {
        self.entries
            .iter()
            .map(|(p, e)| (*p, e.routes.as_slice(), e.source))
    }

    /// Peers known now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no peer is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Auto-connect dials in flight.
    pub fn dialing(&self) -> usize {
        self.in_flight.len()
    }

    /// What was counted.
    pub fn stats(&self) -> DiscoveryStats {
        self.stats
    }

    /// The entry a new peer may displace: not connected, not dialing, expiring first.
    fn evictable(&self) -> Option<PeerId> {
        self.entries
            .iter()
            .filter(|(p, e)| !e.connected && !self.in_flight.contains(p))
            .min_by_key(|(_, e)| e.expires)
            .map(|(p, _)| *p)
    }

    /// Asks for the dials that are due, within the limits.
    /// Dials auto-connect may start now: `max_auto_peers` less the peers connected or dialing.
    fn room(&self) -> usize {
        if !self.config.auto_connect {
            return 0;
        }
        let busy = self.connected.union(&self.in_flight).count();
        self.config.max_auto_peers.saturating_sub(busy)
    }

    fn plan_dials(&mut self, now: Instant) {
        let mut room = self.room();
        if room == 0 {
            return;
        }
        let in_flight = &self.in_flight;
        let mut due: Vec<(Instant, PeerId)> = self
            .entries
            .iter()
            .filter(|(p, e)| !e.connected && !in_flight.contains(p) && e.dial_at <= now)
            .map(|(p, e)| (e.dial_at, *p))
            .collect();
        due.sort();
        for (_, peer) in due {
            if room == 0 {
                break;
            }
            if let Err(wait) = self.dial_rate.try_take(1, now) {
                // Come back when a token is there.
                // (A bucket that never refills is retried every `retry_max`.)
                let wait = wait
                    .min(self.config.retry_max)
                    .max(Duration::from_millis(1));
                let at = now.checked_add(wait).unwrap_or(now);
                for (p, e) in &mut self.entries {
                    if !e.connected && !self.in_flight.contains(p) && e.dial_at <= now {
                        e.dial_at = at;
                    }
                }
                break;
            }
            let Some(entry) = self.entries.get_mut(&peer) else {
                continue;
            };
            self.in_flight.insert(peer);
            room -= 1;
            self.stats.dials += 1;
            self.out.push_back(DiscoveryOutput::Dial {
                peer,
                routes: entry.routes.clone(),
            });
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
