//! Connection admission: [`ConnectionLimiter`], for inbound accepts and outbound dials alike.
//!
//! Inbound, before the handshake costs any CPU, [`check_inbound`](ConnectionLimiter::check_inbound)
//! applies, per source (IP address, or opaque device id): the failure cooldown, then the
//! new-handshake rate; then the global cap on handshakes in flight. After the handshake,
//! [`admit`](ConnectionLimiter::admit) applies the per-peer and total connection limits to the
//! authenticated `PeerId`, in either direction. Outbound,
//! [`check_outbound`](ConnectionLimiter::check_outbound) refuses a destination while it is in
//! its failure cooldown.
//!
//! Nothing is shared between sources: a noisy source exhausts its own rate and earns its own
//! cooldown, never anyone else's. The only shared resources are the connection limits and the
//! handshakes-in-flight cap, whose refusals free up as soon as a connection or handshake ends.
//!
//! Memory is bounded: each address table (inbound sources, outbound destinations) holds at most
//! `max_tracked_addresses` entries. When one is full, entries that carry no state any more
//! (bucket full again and cooldown over) go first, then the least recently seen. Forgetting an
//! entry only ever grants a fresh allowance, never refuses anyone, and the in-flight count is a
//! global counter that no eviction can disturb. The per-peer map holds only peers with at least
//! one admitted connection, so it is bounded by `max_total_connections`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::lru_table::LruTable;
use super::token_bucket::TokenBucket;
use crate::{PeerId, TransportAddress};

/// The period of `max_new_connections_per_minute`.
const RATE_PERIOD: Duration = Duration::from_secs(60);

/// Limits, with these defaults (seed's first four).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Established connections, inbound + outbound (default 100).
    pub max_total_connections: usize,
    /// Established connections per authenticated `PeerId` (default 3).
    pub max_connections_per_peer: usize,
    /// Inbound handshakes started per source per minute: a token bucket with this burst,
    /// refilled continuously (default 10: one every 6 s).
    pub max_new_connections_per_minute: u32,
    /// The cap of the failure backoff (default 60 s).
    pub connection_cooldown: Duration,
    /// The first cooldown after a failure; doubles per consecutive failure up to
    /// `connection_cooldown` (default 1 s).
    pub failure_backoff: Duration,
    /// Global cap on inbound handshakes running at once (default 64).
    pub max_handshakes_in_flight: usize,
    /// Cap on each address table, inbound sources and outbound destinations (default 4096; 0
    /// counts as 1).
    pub max_tracked_addresses: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_total_connections: 100,
            max_connections_per_peer: 3,
            max_new_connections_per_minute: 10,
            connection_cooldown: Duration::from_secs(60),
            failure_backoff: Duration::from_secs(1),
            max_handshakes_in_flight: 64,
            max_tracked_addresses: 4096,
        }
    }
}

impl ConnectionLimits {
    /// For tests and benchmarks: every limit effectively off (address tables stay capped at the
    /// default size, which refuses nothing).
    pub fn unlimited() -> Self {
        Self {
            max_total_connections: usize::MAX,
            max_connections_per_peer: usize::MAX,
            max_new_connections_per_minute: u32::MAX,
            connection_cooldown: Duration::ZERO,
            failure_backoff: Duration::ZERO,
            max_handshakes_in_flight: usize::MAX,
            max_tracked_addresses: Self::default().max_tracked_addresses,
        }
    }
}

/// Where an inbound connection comes from. IP transports use the IP address only (not the port).
///
/// Build it with `From<IpAddr>` or `From<SocketAddr>`, which drop the port, turn IPv4-mapped
/// IPv6 addresses into IPv4, and group IPv6 addresses by /64 (one host or LAN usually owns a
/// whole /64, so per-address limits would be trivial to dodge).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKey {
    /// An IP source, as given.
    Ip(IpAddr),
    /// In-process or radio device ids, hashed.
    Opaque(u64),
}

impl From<IpAddr> for SourceKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::Ip(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                Self::Ip(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

impl From<SocketAddr> for SourceKey {
    fn from(addr: SocketAddr) -> Self {
        addr.ip().into()
    }
}

/// Which limit refused a connection.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// `max_total_connections` established connections.
    TotalConnections,
    /// `max_connections_per_peer` established connections with this peer.
    ConnectionsPerPeer,
    /// This source started `max_new_connections_per_minute` handshakes too recently.
    NewConnectionRate,
    /// This source or destination failed recently and is cooling down.
    Cooldown,
    /// `max_handshakes_in_flight` inbound handshakes are running.
    HandshakesInFlight,
}

impl LimitKind {
    /// A stable name (the variant's name), for JSON output and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::TotalConnections => "TotalConnections",
            Self::ConnectionsPerPeer => "ConnectionsPerPeer",
            Self::NewConnectionRate => "NewConnectionRate",
            Self::Cooldown => "Cooldown",
            Self::HandshakesInFlight => "HandshakesInFlight",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TotalConnections => "total connections",
            Self::ConnectionsPerPeer => "connections per peer",
            Self::NewConnectionRate => "new connections per minute",
            Self::Cooldown => "failure cooldown",
            Self::HandshakesInFlight => "handshakes in flight",
        })
    }
}

/// Why a connection was refused, and when a retry can succeed (None: when some connection
/// closes, or for handshakes in flight, when some handshake ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("limit `{limit}` reached; {}", RetryHint(*.retry_after))]
pub struct LimitRejection {
    /// The limit that refused.
    pub limit: LimitKind,
    /// How long until a retry can succeed; `Duration::MAX` if none can under these limits.
    pub retry_after: Option<Duration>,
}

impl LimitRejection {
    fn new(limit: LimitKind, retry_after: Option<Duration>) -> Self {
        Self { limit, retry_after }
    }
}

/// Formats the retry part of a [`LimitRejection`].
struct RetryHint(Option<Duration>);

impl fmt::Display for RetryHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("retry when a connection or handshake ends"),
            Some(Duration::MAX) => f.write_str("no retry can succeed under these limits"),
            Some(wait) => write!(f, "retry after {wait:?}"),
        }
    }
}

/// Which side opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The remote dialed us.
    Inbound,
    /// We dialed the remote.
    Outbound,
}

/// A failure streak and the cooldown it earned.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    /// Consecutive failures.
    failures: u32,
    /// When the current cooldown started, and its length (zero: none).
    since: Instant,
    length: Duration,
}

impl Backoff {
    fn none(now: Instant) -> Self {
        Self {
            failures: 0,
            since: now,
            length: Duration::ZERO,
        }
    }

    /// Cooldown left at `now`, if any; over exactly at `since + length`.
    fn remaining(&self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.since);
        self.length
            .checked_sub(elapsed)
            .filter(|left| !left.is_zero())
    }

    /// One more consecutive failure at `now`: cooldown of `base * 2^(failures - 1)`, capped.
    fn fail(&mut self, now: Instant, limits: &ConnectionLimits) {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures - 1;
        let cap = limits.connection_cooldown;
        self.length = 1u32
            .checked_shl(doublings)
            .and_then(|factor| limits.failure_backoff.checked_mul(factor))
            .map_or(cap, |length| length.min(cap));
        self.since = now;
    }
}

/// What is known about one inbound source.
#[derive(Clone, Debug)]
struct SourceState {
    bucket: TokenBucket,
    backoff: Backoff,
}

impl SourceState {
    fn new(limits: &ConnectionLimits, now: Instant) -> Self {
        let rate = limits.max_new_connections_per_minute;
        Self {
            bucket: TokenBucket::with_period(rate, rate, RATE_PERIOD, now),
            backoff: Backoff::none(now),
        }
    }

    /// Carries no state any more: bucket full again and cooldown over.
    fn is_stale(&mut self, now: Instant) -> bool {
        self.backoff.remaining(now).is_none()
            && self.bucket.available(now) >= self.bucket.capacity()
    }
}

/// Admission control for connections in both directions; see the module doc.
#[derive(Clone, Debug)]
pub struct ConnectionLimiter {
    limits: ConnectionLimits,
    sources: LruTable<SourceKey, SourceState>,
    destinations: LruTable<TransportAddress, Backoff>,
    /// Only peers with at least one connection.
    peers: HashMap<PeerId, usize>,
    active: usize,
    in_flight: usize,
}

impl ConnectionLimiter {
    /// A limiter with no connection, handshake or address state.
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            sources: LruTable::new(limits.max_tracked_addresses),
            destinations: LruTable::new(limits.max_tracked_addresses),
            peers: HashMap::new(),
            active: 0,
            in_flight: 0,
            limits,
        }
    }

    /// The limits this limiter enforces.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Inbound, before the handshake costs CPU: cooldown of this source, then its rate (consumes
    /// a token only when admitted), then the global handshakes-in-flight cap. On Ok, one
    /// handshake is counted in flight until [`inbound_handshake_done`](Self::inbound_handshake_done).
    pub fn check_inbound(&mut self, source: SourceKey, now: Instant) -> Result<(), LimitRejection> {
        let in_flight_full = self.in_flight >= self.limits.max_handshakes_in_flight;
        let rate_refusal = |wait| LimitRejection::new(LimitKind::NewConnectionRate, Some(wait));
        let in_flight_refusal = LimitRejection::new(LimitKind::HandshakesInFlight, None);
        if let Some(state) = self.sources.get_mut(&source) {
            if let Some(left) = state.backoff.remaining(now) {
                return Err(LimitRejection::new(LimitKind::Cooldown, Some(left)));
            }
            state.bucket.peek(1, now).map_err(rate_refusal)?;
            if in_flight_full {
                return Err(in_flight_refusal);
            }
            state.bucket.try_take(1, now).map_err(rate_refusal)?;
        } else {
            // Unknown source: track it only once admitted, so refusals take no table slot.
            let mut state = SourceState::new(&self.limits, now);
            state.bucket.peek(1, now).map_err(rate_refusal)?;
            if in_flight_full {
                return Err(in_flight_refusal);
            }
            state.bucket.try_take(1, now).map_err(rate_refusal)?;
            self.sources
                .get_or_insert_with(&source, || state, |entry| entry.is_stale(now));
        }
        self.in_flight = self.in_flight.saturating_add(1);
        Ok(())
    }

    /// How many more inbound handshakes `source` may start now under its rate limit (its
    /// cooldown and the in-flight cap aside). Consumes nothing; lets a shell act before the limit
    /// bites (QUIC asks a source that is close to it to validate its address with a Retry).
    pub fn inbound_allowance(&mut self, source: SourceKey, now: Instant) -> u32 {
        match self.sources.get_mut(&source) {
            Some(state) => state.bucket.available(now),
            None => self.limits.max_new_connections_per_minute,
        }
    }

    /// The handshake admitted by `check_inbound` ended. Always decrements in-flight (never below
    /// 0). On failure (garbage, timeout, bad signature) the source enters cooldown:
    /// `failure_backoff * 2^(consecutive failures - 1)`, capped at `connection_cooldown`. On
    /// success the streak resets (a cooldown already running still runs out).
    pub fn inbound_handshake_done(&mut self, source: SourceKey, success: bool, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(state) = self.sources.get_mut(&source) {
            if success {
                state.backoff.failures = 0;
            } else {
                state.backoff.fail(now, &self.limits);
            }
        } else if !success {
            // Evicted while its handshake ran: track it again, for the cooldown.
            let mut state = SourceState::new(&self.limits, now);
            state.backoff.fail(now, &self.limits);
            if state.backoff.remaining(now).is_some() {
                self.sources
                    .get_or_insert_with(&source, || state, |entry| entry.is_stale(now));
            }
        }
    }

    /// Outbound, before dialing `dest`: refused while `dest` is in its failure cooldown.
    pub fn check_outbound(
        &mut self,
        dest: &TransportAddress,
        now: Instant,
    ) -> Result<(), LimitRejection> {
        match self
            .destinations
            .get_mut(dest)
            .and_then(|b| b.remaining(now))
        {
            Some(left) => Err(LimitRejection::new(LimitKind::Cooldown, Some(left))),
            None => Ok(()),
        }
    }

    /// The dial to `dest` ended; a failure starts/extends its cooldown with the same doubling
    /// backoff; success forgets it.
    pub fn outbound_done(&mut self, dest: &TransportAddress, success: bool, now: Instant) {
        if success {
            self.destinations.remove(dest);
            return;
        }
        if let Some(backoff) = self.destinations.get_mut(dest) {
            backoff.fail(now, &self.limits);
            return;
        }
        let mut backoff = Backoff::none(now);
        backoff.fail(now, &self.limits);
        if backoff.remaining(now).is_some() {
            self.destinations.get_or_insert_with(
                dest,
                || backoff,
                |entry| entry.remaining(now).is_none(),
            );
        }
    }

    /// After a handshake (either direction; both count against the same limits): per-peer then
    /// total limit. On Ok the connection is counted until [`release`](Self::release).
    pub fn admit(&mut self, peer: PeerId, direction: Direction) -> Result<(), LimitRejection> {
        // Both directions share the limits; `direction` is part of the contract so a policy
        // that tells them apart needs no API change.
        let _ = direction;
        if self.connections_of(&peer) >= self.limits.max_connections_per_peer {
            return Err(LimitRejection::new(LimitKind::ConnectionsPerPeer, None));
        }
        if self.active >= self.limits.max_total_connections {
            return Err(LimitRejection::new(LimitKind::TotalConnections, None));
        }
        let count = self.peers.entry(peer).or_insert(0);
        *count = count.saturating_add(1);
        self.active = self.active.saturating_add(1);
        Ok(())
    }

    /// An admitted connection closed. Releasing an unknown peer is a no-op (never underflows).
    pub fn release(&mut self, peer: PeerId) {
        if let Entry::Occupied(mut entry) = self.peers.entry(peer) {
            let count = entry.get_mut();
            *count = count.saturating_sub(1);
            if *entry.get() == 0 {
                entry.remove();
            }
            self.active = self.active.saturating_sub(1);
        }
    }

    /// Established connections counted, all peers and directions.
    pub fn active_connections(&self) -> usize {
        self.active
    }

    /// Established connections counted for `peer`.
    pub fn connections_of(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).copied().unwrap_or(0)
    }

    /// Inbound handshakes admitted and not yet done.
    pub fn handshakes_in_flight(&self) -> usize {
        self.in_flight
    }

    /// Inbound sources in the address table.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Outbound destinations in the address table (only those with failures).
    pub fn tracked_destinations(&self) -> usize {
        self.destinations.len()
    }
}

#[cfg(test)]
#[path = "limiter_tests.rs"]
mod tests;
