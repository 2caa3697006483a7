//! Store-and-forward: directed packets held until a path to their destination appears.
//!
//! A node that floods a directed packet without a known route keeps a copy (marked
//! [`FLAG_STORED`](crate::wire::FLAG_STORED)). When a link comes up, held packets are offered
//! on it once; when a route to a destination is learned, its packets are sent on the route and
//! dropped from the store. The store is capped in packets and bytes, per origin and in total,
//! and drops packets older than `max_age`; when a cap is hit the oldest packet (of that origin
//! first) is dropped.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use bitcraps_transport_core::PeerId;

use crate::config::StoreLimits;
use crate::dedup::PacketKey;
use crate::LinkId;

/// Links remembered per held packet as already offered.
const MAX_OFFERED: usize = 16;

/// One held packet.
#[derive(Clone, Debug)]
pub struct Held {
    /// Its name.
    pub key: PacketKey,
    /// Its destination.
    pub dest: PeerId,
    /// The packet as it will be sent.
    pub packet: Bytes,
    /// When it was stored.
    pub stored: Instant,
    /// Links it was already offered on.
    pub offered: Vec<LinkId>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    packets: usize,
    bytes: usize,
}

/// The capped buffer of held packets, oldest first.
#[derive(Debug)]
pub struct Store {
    held: VecDeque<Held>,
    per_origin: HashMap<PeerId, Usage>,
    total: Usage,
    limits: StoreLimits,
}

impl Store {
    /// An empty store with these caps.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            held: VecDeque::new(),
            per_origin: HashMap::new(),
            total: Usage::default(),
            limits,
        }
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.total.bytes
    }

    /// The most packets and the most bytes any one origin holds.
    pub fn max_per_origin(&self) -> (usize, usize) {
        self.per_origin
            .values()
            .fold((0, 0), |(p, b), u| (p.max(u.packets), b.max(u.bytes)))
    }

    /// Drops packets older than the age limit.
    pub fn expire(&mut self, now: Instant) {
        while let Some(front) = self.held.front() {
            if now.saturating_duration_since(front.stored) < self.limits.max_age {
                break;
            }
            self.remove_at(0);
        }
    }

    /// Holds a packet, dropping older ones to stay within the caps. False if it cannot fit at
    /// all (larger than a cap).
    pub fn insert(&mut self, key: PacketKey, dest: PeerId, packet: Bytes, now: Instant) -> bool {
        self.expire(now);
        let l = self.limits;
        let size = packet.len();
        if size > l.max_bytes
            || size > l.max_bytes_per_origin
            || l.max_packets == 0
            || l.max_packets_per_origin == 0
        {
            return false;
        }
        if self.held.iter().any(|h| h.key == key) {
            return true;
        }
        let origin = key.0;
        loop {
            let mine = self.per_origin.get(&origin).copied().unwrap_or_default();
            if mine.packets < l.max_packets_per_origin
                && mine.bytes + size <= l.max_bytes_per_origin
            {
                break;
            }
            match self.held.iter().position(|h| h.key.0 == origin) {
                Some(i) => self.remove_at(i),
                None => break,
            }
        }
        while self.total.packets >= l.max_packets || self.total.bytes + size > l.max_bytes {
            if self.held.is_empty() {
                break;
            }
            self.remove_at(0);
        }
        let usage = self.per_origin.entry(origin).or_default();
        usage.packets += 1;
        usage.bytes += size;
        self.total.packets += 1;
        self.total.bytes += size;
        self.held.push_back(Held {
            key,
            dest,
            packet,
            stored: now,
            offered: Vec::new(),
        });
        true
    }

    /// The held packets not yet offered on `link`, marked as offered now.
    pub fn offer_on(&mut self, link: LinkId, now: Instant) -> Vec<Bytes> {
        self.expire(now);
        let mut out = Vec::new();
        for h in &mut self.held {
            if !h.offered.contains(&link) {
                if h.offered.len() >= MAX_OFFERED {
                    h.offered.remove(0);
                }
                h.offered.push(link);
                out.push(h.packet.clone());
            }
        }
        out
    }

    /// Removes and returns the packets held for `dest`.
    pub fn take_for(&mut self, dest: &PeerId, now: Instant) -> Vec<Bytes> {
        self.expire(now);
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.held.len() {
            if &self.held[i].dest == dest {
                out.push(self.held[i].packet.clone());
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
        out
    }

    fn remove_at(&mut self, i: usize) {
        let Some(h) = self.held.remove(i) else { return };
        let size = h.packet.len();
        self.total.packets -= 1;
        self.total.bytes -= size;
        if let Some(u) = self.per_origin.get_mut(&h.key.0) {
            u.packets -= 1;
            u.bytes -= size;
            if u.packets == 0 {
                self.per_origin.remove(&h.key.0);
            }
        }
    }
}
