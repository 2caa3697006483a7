//! The duplicate cache: which packets this node has already accepted, for how long.
//!
//! Entries are kept in arrival order and expire `expiry` after their arrival; a duplicate does
//! not refresh its entry (a replay must not extend its own life). The cache is capped: when it
//! is full of unexpired entries it refuses new packets instead of forgetting a live one, because
//! forgetting would let a replay be delivered twice. Each entry keeps a digest of the packet's
//! signed bytes and signature, so a later copy is recognised as the same packet without a second
//! signature check, and a copy that differs (forged or altered) is told apart. One origin may
//! hold at most `per_origin` live entries, so a single identity cannot fill the cache for
//! everyone.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bitcraps_transport_core::PeerId;

use crate::wire::MessageId;

/// A packet's name: its origin and message id.
pub type PacketKey = (PeerId, MessageId);

/// A digest of a packet's signed bytes and signature (the first 16 bytes of SHA-256).
pub type Digest = [u8; 16];

/// What the cache knows about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Never seen (or forgotten after its expiry).
    New,
    /// Seen, with the same digest: a copy of an accepted packet.
    Copy,
    /// Seen with a different digest: a forgery or an altered copy.
    Conflict,
}

/// The capped, expiring set of accepted packets.
#[derive(Debug)]
pub struct DedupCache {
    entries: HashMap<PacketKey, Digest>,
    order: VecDeque<(Instant, PacketKey)>,
    per_origin_count: HashMap<PeerId, usize>,
    capacity: usize,
    per_origin: usize,
    expiry: Duration,
}

impl DedupCache {
    /// An empty cache of at most `capacity` entries, `per_origin` of them for one origin, each
    /// kept for `expiry`.
    pub fn new(capacity: usize, per_origin: usize, expiry: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            per_origin_count: HashMap::new(),
            capacity: capacity.max(1),
            per_origin: per_origin.max(1),
            expiry,
        }
    }

    /// The most live entries any one origin has.
    pub fn max_per_origin(&self) -> usize {
        self.per_origin_count.values().copied().max().unwrap_or(0)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops the entries older than the expiry.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.order.front() {
            if now.saturating_duration_since(at) < self.expiry {
                break;
            }
            self.order.pop_front();
            self.entries.remove(&key);
            if let Some(n) = self.per_origin_count.get_mut(&key.0) {
                *n -= 1;
                if *n == 0 {
                    self.per_origin_count.remove(&key.0);
                }
            }
        }
    }

    /// What the cache knows of `key` with `digest`.
    pub fn check(&mut self, key: &PacketKey, digest: &Digest, now: Instant) -> Seen {
        self.expire(now);
        match self.entries.get(key) {
            None => Seen::New,
            Some(d) if d == digest => Seen::Copy,
            Some(_) => Seen::Conflict,
        }
    }

    /// Records an accepted packet. Returns false (and records nothing) when the cache, or this
    /// origin's share of it, is full of live entries.
    pub fn insert(&mut self, key: PacketKey, digest: Digest, now: Instant) -> bool {
        self.expire(now);
        if self.entries.contains_key(&key) {
            return true;
        }
        let mine = self.per_origin_count.get(&key.0).copied().unwrap_or(0);
        if self.entries.len() >= self.capacity || mine >= self.per_origin {
            return false;
        }
        *self.per_origin_count.entry(key.0).or_insert(0) += 1;
        self.entries.insert(key, digest);
        self.order.push_back((now, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcraps_transport_core::Keypair;

    fn key(n: u8) -> PacketKey {
        (
            Keypair::from_secret_bytes([1; 32]).peer_id(),
            MessageId([n; 16]),
        )
    }

    #[test]
    fn copies_conflicts_and_expiry() {
        let t0 = Instant::now();
        let mut c = DedupCache::new(2, 2, Duration::from_secs(10));
        assert_eq!(c.check(&key(1), &[1; 16], t0), Seen::New);
        assert!(c.insert(key(1), [1; 16], t0));
        assert_eq!(c.check(&key(1), &[1; 16], t0), Seen::Copy);
        assert_eq!(c.check(&key(1), &[2; 16], t0), Seen::Conflict);
        assert_eq!(
            c.check(&key(1), &[1; 16], t0 + Duration::from_secs(10)),
            Seen::New
        );
        assert!(c.is_empty());
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let t0 = Instant::now();
        let mut c = DedupCache::new(2, 2, Duration::from_secs(10));
        assert!(c.insert(key(1), [1; 16], t0));
        assert!(c.insert(key(2), [2; 16], t0));
        assert!(!c.insert(key(3), [3; 16], t0));
        assert_eq!(c.check(&key(1), &[1; 16], t0), Seen::Copy);
        assert!(c.insert(key(3), [3; 16], t0 + Duration::from_secs(11)));
    }

    #[test]
    fn one_origin_cannot_take_more_than_its_share() {
        let t0 = Instant::now();
        let other = (
            Keypair::from_secret_bytes([2; 32]).peer_id(),
            MessageId([9; 16]),
        );
        let mut c = DedupCache::new(4, 2, Duration::from_secs(10));
        assert!(c.insert(key(1), [1; 16], t0));
        assert!(c.insert(key(2), [2; 16], t0));
        assert!(!c.insert(key(3), [3; 16], t0), "origin over its share");
        assert!(c.insert(other, [4; 16], t0), "others still get in");
        assert_eq!(c.max_per_origin(), 2);
        assert!(c.insert(key(3), [3; 16], t0 + Duration::from_secs(10)));
    }
}
