//! The relay scheduler: flooded packets waiting for their jittered delay.
//!
//! Each pending relay counts the copies of its packet heard while it waits and the links they
//! came on. When its time comes, the engine cancels it if enough copies were heard (counter-based
//! suppression) or sends it on the links no copy came from. The scheduler is capped: when full,
//! a new relay is refused (the packet is still delivered locally).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use bytes::Bytes;

use crate::dedup::PacketKey;
use crate::LinkId;

/// How a received copy was sent, from its PARTIAL flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyKind {
    /// A full relay (or the origin's send): the sender sent it to all its neighbours it did not
    /// prune, so they are covered.
    Full,
    /// Sent to us alone or to a few (a route, a store's offer, a suppressed relay): it covers
    /// no one but us.
    Partial,
}

impl CopyKind {
    /// The kind of a packet with these flags.
    pub fn of_flags(flags: u8) -> Self {
        if flags & crate::wire::FLAG_PARTIAL == 0 {
            Self::Full
        } else {
            Self::Partial
        }
    }
}

/// Links remembered per pending relay (a node has few links; more are not tracked).
const MAX_HEARD: usize = 32;

/// A relay waiting for its delay.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The packet as it will be sent (TTL and hops already updated).
    pub packet: Bytes,
    /// When it is due.
    pub due: Instant,
    /// Copies heard, the first included.
    pub copies: u8,
    /// The links copies came on (they already have it).
    pub heard: Vec<LinkId>,
    /// Of those, the links whose copy was a full relay: that neighbour's neighbours are covered.
    pub covering: Vec<LinkId>,
}

/// The capped set of pending relays, in due order.
#[derive(Debug)]
pub struct RelayScheduler {
    pending: HashMap<PacketKey, Pending>,
    queue: BinaryHeap<Reverse<(Instant, PacketKey)>>,
    capacity: usize,
}

impl RelayScheduler {
    /// An empty scheduler of at most `capacity` pending relays.
    pub fn new(capacity: usize) -> Self {
        Self {
            pending: HashMap::new(),
            queue: BinaryHeap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Number of pending relays.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Schedules a relay of `packet` at `due`, first heard on `link` as a copy of `kind`.
    /// False if full.
    pub fn schedule(
        &mut self,
        key: PacketKey,
        packet: Bytes,
        link: Option<LinkId>,
        kind: CopyKind,
        due: Instant,
    ) -> bool {
        if self.pending.len() >= self.capacity || self.pending.contains_key(&key) {
            return false;
        }
        self.pending.insert(
            key,
            Pending {
                packet,
                due,
                copies: 1,
                heard: link.into_iter().collect(),
                covering: link
                    .filter(|_| kind == CopyKind::Full)
                    .into_iter()
                    .collect(),
            },
        );
        self.queue.push(Reverse((due, key)));
        true
    }

    /// Counts a copy of a pending packet heard on `link`, of `kind`.
    pub fn heard(&mut self, key: &PacketKey, link: LinkId, kind: CopyKind) {
        if let Some(p) = self.pending.get_mut(key) {
            p.copies = p.copies.saturating_add(1);
            if p.heard.len() < MAX_HEARD && !p.heard.contains(&link) {
                p.heard.push(link);
            }
            if kind == CopyKind::Full && p.covering.len() < MAX_HEARD && !p.covering.contains(&link)
            {
                p.covering.push(link);
            }
        }
    }

    /// When the next relay is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((due, _))| *due)
    }

    /// Takes the next relay due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(PacketKey, Pending)> {
        while let Some(&Reverse((due, key))) = self.queue.peek() {
            if due > now {
                return None;
            }
            self.queue.pop();
            if let Some(p) = self.pending.remove(&key) {
                return Some((key, p));
            }
        }
        None
    }
}
