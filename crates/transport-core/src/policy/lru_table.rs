//! A capped map in least-recently-used order, for policy tables keyed by remote input.
//!
//! Lookups, insertions and removals are O(1): entries live in a dense `Vec` linked into a
//! doubly linked recency list by index (no `unsafe`), and a `HashMap` (std's randomly keyed
//! SipHash, so remote keys cannot force collisions) maps each key to its slot.
//!
//! When a new key arrives and the table is full, the table first drops entries that carry no
//! state any more (a caller-supplied `is_stale` predicate), then evicts the least recently used.
//! The stale sweep is a scan of the whole table, so it runs at most once per `capacity / 4`
//! insertions: between sweeps a full table evicts its least recently used entry. The cost per
//! insertion is therefore O(1) amortized, whatever the keys.

use std::collections::HashMap;
use std::hash::Hash;

/// "No slot" in the recency links.
const NIL: usize = usize::MAX;

#[derive(Clone, Debug)]
struct Slot<K, V> {
    key: K,
    value: V,
    /// More recently used neighbour, or `NIL` for the head.
    prev: usize,
    /// Less recently used neighbour, or `NIL` for the tail.
    next: usize,
}

/// A map of at most `capacity` entries that evicts stale, then least recently used, entries.
#[derive(Clone, Debug)]
pub(crate) struct LruTable<K, V> {
    index: HashMap<K, usize>,
    slots: Vec<Slot<K, V>>,
    /// Most recently used slot.
    head: usize,
    /// Least recently used slot.
    tail: usize,
    capacity: usize,
    inserts_since_sweep: usize,
}

impl<K: Hash + Eq + Clone, V> LruTable<K, V> {
    /// An empty table holding at most `capacity` entries (a capacity of 0 is treated as 1).
    /// Nothing is allocated up front.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.max(1),
            inserts_since_sweep: 0,
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The entry of `key`, marked as the most recently used.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = *self.index.get(key)?;
        self.touch(i);
        self.slots.get_mut(i).map(|slot| &mut slot.value)
    }

    /// The entry of `key`, inserted with `make` if absent (making room first, see the module
    /// doc); either way marked as the most recently used.
    pub(crate) fn get_or_insert_with(
        &mut self,
        key: &K,
        make: impl FnOnce() -> V,
        is_stale: impl FnMut(&mut V) -> bool,
    ) -> &mut V {
        let i = match self.index.get(key) {
            Some(&i) => {
                self.touch(i);
                i
            }
            None => {
                self.make_room(is_stale);
                self.push_new(key.clone(), make())
            }
        };
        &mut self.slots[i].value
    }

    /// Removes the entry of `key`.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = *self.index.get(key)?;
        Some(self.remove_at(i))
    }

    /// Keeps only the entries for which `keep` returns true.
    fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        // Walking down is safe with swap_remove: the slot moved into `i` comes from a higher
        // index, which was already visited.
        for i in (0..self.slots.len()).rev() {
            if !keep(&mut self.slots[i].value) {
                self.remove_at(i);
            }
        }
    }

    /// Makes room for one new entry.
    fn make_room(&mut self, mut is_stale: impl FnMut(&mut V) -> bool) {
        self.inserts_since_sweep = self.inserts_since_sweep.saturating_add(1);
        if self.slots.len() < self.capacity {
            return;
        }
        if self.inserts_since_sweep >= (self.capacity / 4).max(1) {
            self.inserts_since_sweep = 0;
            self.retain(|value| !is_stale(value));
        }
        while self.slots.len() >= self.capacity && self.tail != NIL {
            self.remove_at(self.tail);
        }
    }

    /// Appends a new slot (the key must be absent) as the most recently used.
    fn push_new(&mut self, key: K, value: V) -> usize {
        let i = self.slots.len();
        self.slots.push(Slot {
            key: key.clone(),
            value,
            prev: NIL,
            next: NIL,
        });
        self.index.insert(key, i);
        self.push_front(i);
        i
    }

    fn remove_at(&mut self, i: usize) -> V {
        self.unlink(i);
        let slot = self.slots.swap_remove(i);
        self.index.remove(&slot.key);
        if i < self.slots.len() {
            // The former last slot now lives at `i`: repoint its neighbours and its index.
            let (prev, next) = (self.slots[i].prev, self.slots[i].next);
            if prev == NIL {
                self.head = i;
            } else {
                self.slots[prev].next = i;
            }
            if next == NIL {
                self.tail = i;
            } else {
                self.slots[next].prev = i;
            }
            if let Some(moved) = self.index.get_mut(&self.slots[i].key) {
                *moved = i;
            }
        }
        slot.value
    }

    fn touch(&mut self, i: usize) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next].prev = prev;
        }
        self.slots[i].prev = NIL;
        self.slots[i].next = NIL;
    }

    fn push_front(&mut self, i: usize) {
        self.slots[i].prev = NIL;
        self.slots[i].next = self.head;
        if self.head == NIL {
            self.tail = i;
        } else {
            self.slots[self.head].prev = i;
        }
        self.head = i;
    }
}

#[cfg(test)]
impl<K: Hash + Eq + Clone + std::fmt::Debug, V> LruTable<K, V> {
    /// Keys from the most to the least recently used, checking every link on the way.
    pub(crate) fn keys_by_recency(&self) -> Vec<K> {
        let mut keys = Vec::new();
        let mut prev = NIL;
        let mut i = self.head;
        while i != NIL {
            assert!(keys.len() < self.slots.len(), "cycle in the recency list");
            let slot = &self.slots[i];
            assert_eq!(slot.prev, prev, "broken back link");
            assert_eq!(self.index.get(&slot.key), Some(&i), "index out of sync");
            keys.push(slot.key.clone());
            prev = i;
            i = slot.next;
        }
        assert_eq!(self.tail, prev, "tail out of sync");
        assert_eq!(keys.len(), self.slots.len(), "unreachable slots");
        assert_eq!(self.index.len(), self.slots.len(), "index size");
        assert!(self.slots.len() <= self.capacity, "over capacity");
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn never(_: &mut u32) -> bool {
        false
    }

    fn insert(table: &mut LruTable<u32, u32>, key: u32, value: u32) {
        *table.get_or_insert_with(&key, || value, never) = value;
    }

    #[test]
    fn empty_table() {
        let mut table: LruTable<u32, u32> = LruTable::new(4);
        assert_eq!(table.len(), 0);
        assert!(table.get_mut(&1).is_none());
        assert!(table.remove(&1).is_none());
        assert!(table.keys_by_recency().is_empty());
    }

    #[test]
    fn zero_capacity_is_one() {
        let mut table: LruTable<u32, u32> = LruTable::new(0);
        insert(&mut table, 1, 10);
        insert(&mut table, 2, 20);
        assert_eq!(table.keys_by_recency(), vec![2]);
        assert_eq!(table.get_mut(&2), Some(&mut 20));
    }

    #[test]
    fn evicts_least_recently_used() {
        let mut table: LruTable<u32, u32> = LruTable::new(3);
        insert(&mut table, 1, 10);
        insert(&mut table, 2, 20);
        insert(&mut table, 3, 30);
        assert_eq!(table.keys_by_recency(), vec![3, 2, 1]);
        // Using 1 makes 2 the least recently used.
        assert_eq!(table.get_mut(&1), Some(&mut 10));
        assert_eq!(table.keys_by_recency(), vec![1, 3, 2]);
        insert(&mut table, 4, 40);
        assert_eq!(table.keys_by_recency(), vec![4, 1, 3]);
        assert!(table.get_mut(&2).is_none());
    }

    #[test]
    fn existing_key_is_not_replaced_by_make() {
        let mut table: LruTable<u32, u32> = LruTable::new(3);
        insert(&mut table, 1, 10);
        let value = table.get_or_insert_with(&1, || 99, never);
        assert_eq!(*value, 10);
    }

    #[test]
    fn stale_entries_go_before_recent_ones() {
        let mut table: LruTable<u32, u32> = LruTable::new(4);
        // Values: 0 means stale.
        insert(&mut table, 1, 1); // least recently used, but live
        insert(&mut table, 2, 0);
        insert(&mut table, 3, 0);
        insert(&mut table, 4, 1);
        table.get_or_insert_with(&5, || 1, |v| *v == 0);
        assert_eq!(table.keys_by_recency(), vec![5, 4, 1]);
    }

    #[test]
    fn sweeps_are_rationed_then_lru_evicts() {
        let mut table: LruTable<u32, u32> = LruTable::new(8);
        for key in 0..8 {
            insert(&mut table, key, 1);
        }
        let mut sweeps = 0;
        let mut calls = 0;
        for key in 8..40 {
            let before = calls;
            table.get_or_insert_with(
                &key,
                || 1,
                |_| {
                    calls += 1;
                    false
                },
            );
            if calls > before {
                sweeps += 1;
            }
            assert_eq!(table.len(), 8);
        }
        // One sweep per capacity / 4 = 2 insertions.
        assert_eq!(sweeps, 16);
        assert_eq!(table.keys_by_recency(), (32..40).rev().collect::<Vec<_>>());
    }

    #[test]
    fn remove_head_tail_middle() {
        let mut table: LruTable<u32, u32> = LruTable::new(8);
        for key in 0..6 {
            insert(&mut table, key, key * 10);
        }
        assert_eq!(table.remove(&5), Some(50));
        assert_eq!(table.remove(&0), Some(0));
        assert_eq!(table.remove(&2), Some(20));
        assert_eq!(table.remove(&2), None);
        assert_eq!(table.keys_by_recency(), vec![4, 3, 1]);
        for key in [1, 3, 4] {
            assert_eq!(table.remove(&key), Some(key * 10));
        }
        assert!(table.keys_by_recency().is_empty());
        insert(&mut table, 7, 70);
        assert_eq!(table.keys_by_recency(), vec![7]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Upsert(u8, u32),
        Get(u8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..24, any::<u32>()).prop_map(|(k, v)| Op::Upsert(k, v)),
            (0u8..24).prop_map(Op::Get),
            (0u8..24).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// With nothing ever stale, the table is exactly an LRU cache: compare it with a
        /// naive model (a deque, most recently used first).
        #[test]
        fn matches_naive_lru(capacity in 1usize..10, ops in prop::collection::vec(op(), 0..200)) {
            let mut table: LruTable<u8, u32> = LruTable::new(capacity);
            let mut model: VecDeque<(u8, u32)> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Upsert(k, v) => {
                        *table.get_or_insert_with(&k, || v, |_| false) = v;
                        if let Some(pos) = model.iter().position(|(mk, _)| *mk == k) {
                            model.remove(pos);
                        } else if model.len() == capacity {
                            model.pop_back();
                        }
                        model.push_front((k, v));
                    }
                    Op::Get(k) => {
                        let got = table.get_mut(&k).map(|v| *v);
                        let want = model.iter().position(|(mk, _)| *mk == k).map(|pos| {
                            let entry = model.remove(pos).unwrap_or_default();
                            model.push_front(entry);
                            entry.1
                        });
                        prop_assert_eq!(got, want);
                    }
                    Op::Remove(k) => {
                        let got = table.remove(&k);
                        let want = model
                            .iter()
                            .position(|(mk, _)| *mk == k)
                            .and_then(|pos| model.remove(pos))
                            .map(|(_, v)| v);
                        prop_assert_eq!(got, want);
                    }
                }
                let keys: Vec<u8> = model.iter().map(|(k, _)| *k).collect();
                prop_assert_eq!(table.keys_by_recency(), keys);
            }
        }
    }
}
