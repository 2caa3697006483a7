//! The route table: the next hop towards each origin recently heard from.
//!
//! "A packet from X arrived on link L after h hops" teaches "X is h + 1 hops away via L". A
//! route is replaced by a shorter one, refreshed by traffic on the same link, dropped when its
//! link goes down, and ignored after `expiry` without fresh traffic. The table is capped; when
//! full, the entry heard from least recently is dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bitcraps_transport_core::PeerId;

use crate::LinkId;

/// One learned route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The link towards the peer.
    pub link: LinkId,
    /// Hops to the peer over that link (1 = a direct neighbour).
    pub hops: u8,
    /// When traffic last confirmed it.
    pub heard: Instant,
}

/// What learning did to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// A new route, or a different link than before.
    New,
    /// The same route, refreshed.
    Refreshed,
    /// Kept the existing, better route.
    Ignored,
}

/// The capped table of learned routes.
#[derive(Debug)]
pub struct RouteTable {
    routes: HashMap<PeerId, Route>,
    capacity: usize,
    expiry: Duration,
}

impl RouteTable {
    /// An empty table of at most `capacity` routes, each valid for `expiry`.
    pub fn new(capacity: usize, expiry: Duration) -> Self {
        Self {
            routes: HashMap::new(),
            capacity: capacity.max(1),
            expiry,
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The live route to `peer`.
    pub fn get(&self, peer: &PeerId, now: Instant) -> Option<Route> {
        self.routes
            .get(peer)
            .filter(|r| now.saturating_duration_since(r.heard) < self.expiry)
            .copied()
    }

    /// Learns that `peer` is `hops` hops away via `link`.
    pub fn learn(&mut self, peer: PeerId, link: LinkId, hops: u8, now: Instant) -> Learned {
        let fresh = Route {
            link,
            hops,
            heard: now,
        };
        if let Some(old) = self.routes.get_mut(&peer) {
            let live = now.saturating_duration_since(old.heard) < self.expiry;
            if live && old.link == link {
                old.heard = now;
                old.hops = hops;
                return Learned::Refreshed;
            }
            if live && old.hops < hops {
                return Learned::Ignored;
            }
            *old = fresh;
            return Learned::New;
        }
        if self.routes.len() >= self.capacity {
            self.routes
                .retain(|_, r| now.saturating_duration_since(r.heard) < self.expiry);
        }
        if self.routes.len() >= self.capacity {
            if let Some(oldest) = self
                .routes
                .iter()
                .min_by_key(|(_, r)| r.heard)
                .map(|(k, _)| *k)
            {
                self.routes.remove(&oldest);
            }
        }
        self.routes.insert(peer, fresh);
        Learned::New
    }

    /// Forgets every route over `link`.
    pub fn link_down(&mut self, link: LinkId) {
        self.routes.retain(|_, r| r.link != link);
    }
}
