//! [`AssociationTable`]: the capped map of one socket's associations, keyed by (remote
//! address, our session id), with a second index by (remote address, the remote's session id)
//! so a retransmitted HANDSHAKE_1 finds the handshake it repeats.

use std::collections::HashMap;
use std::net::SocketAddr;

/// One association's key: the remote address and the session id this side chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssocKey {
    /// The remote's address.
    pub addr: SocketAddr,
    /// Our session id (what the remote puts in the header of datagrams to us).
    pub local_id: u32,
}

#[derive(Debug)]
struct Entry<V> {
    remote_id: u32,
    value: V,
}

/// A capped association table. Insertion fails when full; the owner evicts expired entries
/// with [`AssociationTable::retain`] first.
#[derive(Debug)]
pub struct AssociationTable<V> {
    by_local: HashMap<AssocKey, Entry<V>>,
    by_remote: HashMap<(SocketAddr, u32), u32>,
    cap: usize,
}

impl<V> AssociationTable<V> {
    /// An empty table holding at most `cap` associations (0 counts as 1).
    pub fn new(cap: usize) -> Self {
        Self {
            by_local: HashMap::new(),
            by_remote: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// Associations held.
    pub fn len(&self) -> usize {
        self.by_local.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.by_local.is_empty()
    }

    /// True if no association can be added.
    pub fn is_full(&self) -> bool {
        self.by_local.len() >= self.cap
    }

    /// The association `key`.
    pub fn get(&self, key: &AssocKey) -> Option<&V> {
        self.by_local.get(key).map(|e| &e.value)
    }

    /// The association `key`, mutably.
    pub fn get_mut(&mut self, key: &AssocKey) -> Option<&mut V> {
        self.by_local.get_mut(key).map(|e| &mut e.value)
    }

    /// The remote's session id of association `key`.
    pub fn remote_id(&self, key: &AssocKey) -> Option<u32> {
        self.by_local.get(key).map(|e| e.remote_id)
    }

    /// The key of the association the remote at `addr` calls `remote_id`.
    pub fn find_remote(&self, addr: SocketAddr, remote_id: u32) -> Option<AssocKey> {
        self.by_remote
            .get(&(addr, remote_id))
            .map(|&local_id| AssocKey { addr, local_id })
    }

    /// Adds an association with a fresh local id drawn from `next_id` (0 and ids in use for
    /// `addr` are skipped). Gives `value` back if the table is full or the remote's id is
    /// already known for `addr`.
    pub fn insert(
        &mut self,
        addr: SocketAddr,
        remote_id: u32,
        value: V,
        mut next_id: impl FnMut() -> u32,
    ) -> Result<AssocKey, V> {
        if self.is_full() || self.by_remote.contains_key(&(addr, remote_id)) {
            return Err(value);
        }
        let key = loop {
            let local_id = next_id();
            let key = AssocKey { addr, local_id };
            if local_id != 0 && !self.by_local.contains_key(&key) {
                break key;
            }
        };
        self.by_local.insert(key, Entry { remote_id, value });
        self.by_remote.insert((addr, remote_id), key.local_id);
        Ok(key)
    }

    /// Removes association `key`, returning its value.
    pub fn remove(&mut self, key: &AssocKey) -> Option<V> {
        let entry = self.by_local.remove(key)?;
        self.by_remote.remove(&(key.addr, entry.remote_id));
        Some(entry.value)
    }

    /// Keeps the associations for which `keep` is true; the others are removed and handed to
    /// `removed`.
    pub fn retain(
        &mut self,
        mut keep: impl FnMut(&AssocKey, &V) -> bool,
        mut removed: impl FnMut(AssocKey, V),
    ) {
        let gone: Vec<AssocKey> = self
            .by_local
            .iter()
            .filter(|(k, e)| !keep(k, &e.value))
            .map(|(k, _)| *k)
            .collect();
        for key in gone {
            if let Some(v) = self.remove(&key) {
                removed(key, v);
            }
        }
    }

    /// Iterates over the values.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.by_local.values().map(|e| &e.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn capped_and_indexed_both_ways() {
        let mut t = AssociationTable::new(3);
        let mut ids = [0u32, 7, 7, 8, 9, 10].into_iter();
        let mut next = || ids.next().unwrap();
        let a = t.insert(addr(1), 100, "a", &mut next).unwrap();
        assert_eq!(a.local_id, 7, "0 is never used as an id");
        let b = t.insert(addr(1), 101, "b", &mut next).unwrap();
        assert_eq!(b.local_id, 8, "an id in use for the address is skipped");
        assert_eq!(t.insert(addr(1), 100, "dup", &mut next), Err("dup"));
        let c = t.insert(addr(2), 100, "c", &mut next).unwrap();
        assert!(t.is_full());
        assert_eq!(t.insert(addr(3), 1, "d", || 99), Err("d"));
        assert_eq!(t.find_remote(addr(1), 101), Some(b));
        assert_eq!(t.find_remote(addr(2), 100), Some(c));
        assert_eq!(t.remote_id(&a), Some(100));
        assert_eq!(t.get(&c), Some(&"c"));
        assert_eq!(t.remove(&b), Some("b"));
        assert_eq!(t.find_remote(addr(1), 101), None);
        let mut removed = Vec::new();
        t.retain(|_, v| *v != "a", |k, v| removed.push((k, v)));
        assert_eq!(removed, vec![(a, "a")]);
        assert_eq!(t.len(), 1);
        assert!(t.insert(addr(3), 1, "d", || 99).is_ok());
    }
}
