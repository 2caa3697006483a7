//! Bounded, expiring set of recently seen message ids, for mesh flood and failover dedup.
//!
//! A `HashMap` gives O(1) lookup; a `VecDeque` of `(first seen, id)` in arrival order gives
//! O(1) amortized expiry and oldest-first eviction. An id is remembered for `ttl` from the
//! first time it was seen (a duplicate does not extend it) and expires at exactly
//! `first seen + ttl`. Time never runs backwards here: a `now` earlier than one already seen
//! is treated as that latest instant, which keeps the queue sorted.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Remembers recently seen message ids (generic `K: Hash + Eq + Clone`) for `ttl`, at most
/// `capacity` of them (evicts the oldest).
#[derive(Clone, Debug)]
pub struct DedupCache<K> {
    seen: HashMap<K, Instant>,
    order: VecDeque<(Instant, K)>,
    capacity: usize,
    ttl: Duration,
    latest: Option<Instant>,
}

impl<K: Hash + Eq + Clone> DedupCache<K> {
    /// An empty cache; nothing is allocated up front, so any `capacity` is cheap. A capacity
    /// of 0 remembers nothing; a `ttl` of 0 forgets every id at once.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            ttl,
            latest: None,
        }
    }

    /// True if `id` is new (and records it); false if seen within ttl.
    pub fn insert(&mut self, id: K, now: Instant) -> bool {
        let now = self.clamp(now);
        self.purge_expired(now);
        if self.seen.contains_key(&id) {
            return false;
        }
        if self.capacity == 0 {
            return true;
        }
        while self.seen.len() >= self.capacity {
            match self.order.pop_front() {
                Some((_, old)) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seen.insert(id.clone(), now);
        self.order.push_back((now, id));
        true
    }

    /// True if `id` was seen within ttl of `now` (does not record it).
    pub fn contains(&self, id: &K, now: Instant) -> bool {
        let now = self.latest.map_or(now, |latest| latest.max(now));
        self.seen.get(id).is_some_and(|&at| !self.expired(at, now))
    }

    /// Forgets every id whose ttl has run out at `now` (`insert` does this itself).
    pub fn purge_expired(&mut self, now: Instant) {
        let now = self.clamp(now);
        while let Some(&(at, _)) = self.order.front() {
            if !self.expired(at, now) {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.seen.remove(&id);
            }
        }
    }

    /// Ids remembered, including any expired since the last `insert` or `purge_expired`.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn expired(&self, at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) >= self.ttl
    }

    fn clamp(&mut self, now: Instant) -> Instant {
        let now = self.latest.map_or(now, |latest| latest.max(now));
        self.latest = Some(now);
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn duplicates_within_ttl_are_rejected() {
        let t0 = Instant::now();
        let mut c = DedupCache::new(10, ms(1000));
        assert!(c.is_empty());
        assert!(c.insert(7u32, t0));
        assert!(!c.insert(7, t0 + ms(1)));
        assert!(c.contains(&7, t0 + ms(2)));
        assert!(!c.contains(&8, t0));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn expiry_at_the_exact_boundary_and_reinsert() {
        let t0 = Instant::now();
        let mut c = DedupCache::new(10, ms(1000));
        assert!(c.insert("a", t0));
        assert!(
            !c.insert("a", t0 + ms(500)),
            "a duplicate does not extend the ttl"
        );
        assert!(c.contains(&"a", t0 + ms(999)));
        assert!(!c.insert("a", t0 + ms(999)));
        assert!(!c.contains(&"a", t0 + ms(1000)));
        assert!(c.insert("a", t0 + ms(1000)), "expired: new again");
        assert_eq!(c.len(), 1);
        assert!(c.contains(&"a", t0 + ms(1999)));
        assert!(!c.contains(&"a", t0 + ms(2000)));
        assert!(c.insert("a", t0 + ms(2500)));
        assert_eq!((c.len(), c.order.len()), (1, 1));
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let t0 = Instant::now();
        let mut c = DedupCache::new(3, ms(1000));
        for (i, id) in [1, 2, 3, 4].into_iter().enumerate() {
            assert!(c.insert(id, t0 + ms(i as u64)));
        }
        assert_eq!(c.len(), 3);
        assert!(!c.contains(&1, t0 + ms(5)));
        assert!([2, 3, 4].iter().all(|id| c.contains(id, t0 + ms(5))));
        assert!(c.insert(1, t0 + ms(6)), "evicted id is new again");
        assert!(!c.contains(&2, t0 + ms(6)));
    }

    #[test]
    fn purge_and_len() {
        let t0 = Instant::now();
        let mut c = DedupCache::new(10, ms(100));
        c.insert(1, t0);
        c.insert(2, t0 + ms(50));
        c.purge_expired(t0 + ms(100));
        assert_eq!(c.len(), 1);
        c.purge_expired(t0 + ms(150));
        assert!(c.is_empty());
    }

    #[test]
    fn degenerate_parameters_and_backwards_time() {
        let t0 = Instant::now() + ms(10_000);
        let mut c = DedupCache::new(0, ms(100));
        assert!(c.insert(1, t0) && c.insert(1, t0) && c.is_empty());
        let mut c = DedupCache::new(usize::MAX, Duration::ZERO);
        assert!(c.insert(1, t0) && c.insert(1, t0));
        assert!(!c.contains(&1, t0));
        let mut c = DedupCache::new(4, Duration::MAX);
        assert!(c.insert(1, t0 + ms(500)));
        assert!(!c.insert(1, t0), "earlier now is clamped, no panic");
        assert!(c.contains(&1, t0 - ms(10_000)));
        let mut c = DedupCache::new(4, ms(100));
        c.insert(1, t0 + ms(500));
        assert!(!c.contains(&1, t0 + ms(600)));
        assert!(c.contains(&1, t0), "earlier now reads as the latest insert");
    }

    /// Reference model: a list in arrival order, scanned linearly.
    #[derive(Default)]
    struct Model(Vec<(u8, u64)>);

    impl Model {
        fn insert(&mut self, id: u8, now: u64, cap: usize, ttl: u64) -> bool {
            self.0.retain(|&(_, at)| now - at < ttl);
            if self.0.iter().any(|&(k, _)| k == id) {
                return false;
            }
            if cap > 0 {
                if self.0.len() >= cap {
                    self.0.remove(0);
                }
                self.0.push((id, now));
            }
            true
        }

        fn contains(&self, id: u8, now: u64, ttl: u64) -> bool {
            self.0.iter().any(|&(k, at)| k == id && now - at < ttl)
        }
    }

    proptest! {
        #[test]
        fn matches_a_naive_model(
            ops in prop::collection::vec((any::<bool>(), 0u8..12, 0u64..40), 0..300),
            cap in 0usize..8,
            ttl in 0u64..120,
        ) {
            let t0 = Instant::now();
            let mut c = DedupCache::new(cap, ms(ttl));
            let mut model = Model::default();
            let mut now = 0;
            for (is_insert, id, step) in ops {
                now += step;
                let t = t0 + ms(now);
                if is_insert {
                    prop_assert_eq!(c.insert(id, t), model.insert(id, now, cap, ttl));
                    prop_assert_eq!(c.len(), model.0.len());
                    prop_assert_eq!(c.order.len(), c.len());
                } else {
                    prop_assert_eq!(c.contains(&id, t), model.contains(id, now, ttl));
                }
            }
        }
    }
}
