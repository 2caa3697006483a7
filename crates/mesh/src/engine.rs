//! The [`Mesh`] engine: its state, the inputs other than packets, and the outputs.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};

use bitcraps_transport_core::{Keypair, PeerId};

use crate::config::{ConfigError, MeshConfig, RelayPolicy};
use crate::crypto;
use crate::dedup::{DedupCache, Digest, PacketKey};
use crate::relay::RelayScheduler;
use crate::routes::RouteTable;
use crate::store::Store;
use crate::wire::{self, Destination, MessageId, Packet, FLAG_STORED};
use crate::{Action, LinkId, SendError};

/// Links a node tracks at once; more `link_up`s are ignored.
pub const MAX_LINKS: usize = 256;

/// Counters of what the engine did, for tests and the simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets handed to the caller to transmit (one per link).
    pub transmissions: u64,
    /// Payloads delivered to the application.
    pub delivered: u64,
    /// Copies of already accepted packets received.
    pub duplicates: u64,
    /// Relays cancelled because enough copies were heard.
    pub suppressed: u64,
    /// Packets refused: undecodable, bad signature, conflicting, bad TTL, unknown link.
    pub rejected: u64,
    /// Packets dropped for lack of room (dedup cache, relay scheduler or action queue full).
    pub overloaded: u64,
    /// Stored packets sent when a path appeared.
    pub store_forwards: u64,
}

/// How much each bounded part holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Entries of the duplicate cache.
    pub dedup_entries: usize,
    /// Learned routes.
    pub routes: usize,
    /// Relays waiting for their delay.
    pub pending_relays: usize,
    /// Packets in the store.
    pub stored_packets: usize,
    /// Bytes in the store.
    pub stored_bytes: usize,
    /// The most packets one origin has in the store.
    pub stored_packets_one_origin: usize,
    /// The most bytes one origin has in the store.
    pub stored_bytes_one_origin: usize,
    /// Actions waiting to be polled.
    pub queued_actions: usize,
    /// Links up.
    pub links: usize,
}

/// One link up: the peer behind it and that peer's last announced neighbours.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) id: LinkId,
    pub(crate) peer: PeerId,
    pub(crate) neighbours: Vec<PeerId>,
}

/// One node's mesh engine (sans-IO; see the crate doc).
#[derive(Debug)]
pub struct Mesh {
    pub(crate) keypair: Keypair,
    pub(crate) me: PeerId,
    pub(crate) config: MeshConfig,
    pub(crate) rng: StdRng,
    /// Links up, in the order they came up.
    pub(crate) links: Vec<Link>,
    /// When our neighbour list is due to be sent (after a link change).
    pub(crate) hello_due: Option<Instant>,
    pub(crate) dedup: DedupCache,
    pub(crate) routes: RouteTable,
    pub(crate) relays: RelayScheduler,
    pub(crate) store: Store,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) stats: Stats,
}

impl Mesh {
    /// An engine for `keypair` with `config`, its random choices drawn from `seed`.
    pub fn new(keypair: Keypair, config: MeshConfig, seed: [u8; 32]) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            me: keypair.peer_id(),
            keypair,
            rng: StdRng::from_seed(seed),
            links: Vec::new(),
            hello_due: None,
            dedup: DedupCache::new(config.dedup_capacity, config.dedup_expiry),
            routes: RouteTable::new(config.route_capacity, config.route_expiry),
            relays: RelayScheduler::new(config.max_pending_relays),
            store: Store::new(config.store),
            actions: VecDeque::new(),
            stats: Stats::default(),
            config,
        })
    }

    /// This node's identity.
    pub fn peer_id(&self) -> PeerId {
        self.me
    }

    /// The settings.
    pub fn config(&self) -> &MeshConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// What each bounded part holds now.
    pub fn memory(&self) -> MemoryUsage {
        MemoryUsage {
            dedup_entries: self.dedup.len(),
            routes: self.routes.len(),
            pending_relays: self.relays.len(),
            stored_packets: self.store.len(),
            stored_bytes: self.store.bytes(),
            stored_packets_one_origin: self.store.max_per_origin().0,
            stored_bytes_one_origin: self.store.max_per_origin().1,
            queued_actions: self.actions.len(),
            links: self.links.len(),
        }
    }

    /// A link to the authenticated neighbour `peer` is up. Held packets are offered on it.
    pub fn link_up(&mut self, link: LinkId, peer: PeerId, now: Instant) {
        if self.links.len() >= MAX_LINKS || self.links.iter().any(|l| l.id == link) {
            return;
        }
        self.links.push(Link {
            id: link,
            peer,
            neighbours: Vec::new(),
        });
        self.hello_soon(now);
        for bytes in self.store.take_for(&peer, now) {
            self.stats.store_forwards += 1;
            self.transmit(link, bytes);
        }
        for bytes in self.store.offer_on(link, now) {
            self.stats.store_forwards += 1;
            self.transmit(link, bytes);
        }
    }

    /// A link is down: no more sends on it, and its routes are forgotten.
    pub fn link_down(&mut self, link: LinkId, now: Instant) {
        let before = self.links.len();
        self.links.retain(|l| l.id != link);
        self.routes.link_down(link);
        if self.links.len() != before {
            self.hello_soon(now);
        }
    }

    fn hello_soon(&mut self, now: Instant) {
        if self.hello_due.is_none() {
            self.hello_due = Some(now + self.config.hello_delay);
        }
    }

    /// Sends our neighbour list on every link.
    fn send_hello(&mut self) {
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        let peers: Vec<PeerId> = self.links.iter().map(|l| l.peer).collect();
        let bytes = crypto::seal_neighbours(&self.keypair, MessageId(id), &peers).encode();
        self.flood_now(&bytes, None);
    }

    /// Sends `payload` to `dest` (everyone, or one peer, end-to-end encrypted). Returns the id.
    pub fn send(
        &mut self,
        dest: Destination,
        payload: Bytes,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        let id = MessageId(id);
        let ttl = self.config.max_ttl;
        let packet = match dest {
            Destination::Broadcast => crypto::seal_broadcast(&self.keypair, id, ttl, payload)?,
            Destination::Peer(peer) if peer == self.me => return Err(SendError::ToSelf),
            Destination::Neighbours => return Err(SendError::Neighbours),
            Destination::Peer(peer) => {
                let mut eph = [0u8; 32];
                self.rng.fill_bytes(&mut eph);
                crypto::seal_directed(&self.keypair, id, ttl, peer, eph, &payload)?
            }
        };
        let key = (self.me, id);
        if !self.dedup.insert(key, digest(&packet), now) {
            self.stats.overloaded += 1;
            return Err(SendError::Overloaded);
        }
        let bytes = packet.encode();
        match dest {
            Destination::Peer(peer) => self.forward_directed(key, peer, bytes, None, now),
            Destination::Broadcast | Destination::Neighbours => self.flood_now(&bytes, None),
        }
        Ok(id)
    }

    /// Runs the relays that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.dedup.expire(now);
        self.store.expire(now);
        if self.hello_due.is_some_and(|due| due <= now) {
            self.hello_due = None;
            self.send_hello();
        }
        while let Some((_, pending)) = self.relays.pop_due(now) {
            let (threshold, fanout, protect) = match self.config.relay {
                RelayPolicy::Suppressed {
                    threshold,
                    fanout,
                    protect_degree,
                    ..
                } => (threshold, usize::from(fanout), usize::from(protect_degree)),
                RelayPolicy::Flood => (u8::MAX, usize::MAX, 0),
            };
            let mut targets = self.relay_targets(&pending.heard);
            if pending.copies >= threshold {
                // Enough neighbours relay it: only the poorly linked still get it from us.
                targets.retain(|t| {
                    self.links
                        .iter()
                        .any(|l| l.id == *t && l.neighbours.len() < protect)
                });
                if targets.is_empty() {
                    self.stats.suppressed += 1;
                    continue;
                }
            }
            targets.shuffle(&mut self.rng);
            targets.truncate(fanout);
            for link in targets {
                self.transmit(link, pending.packet.clone());
            }
        }
    }

    /// The links a relay goes on: not those a copy came from, and (unless flooding naively)
    /// not those whose peer is a neighbour of a node a copy came from. That node relays to its
    /// own neighbours, or they were covered before it; see `docs/mesh.md`.
    fn relay_targets(&self, heard: &[LinkId]) -> Vec<LinkId> {
        let prune = matches!(self.config.relay, RelayPolicy::Suppressed { .. });
        let covered: Vec<PeerId> = if prune {
            self.links
                .iter()
                .filter(|l| heard.contains(&l.id))
                .flat_map(|l| l.neighbours.iter().copied())
                .collect()
        } else {
            Vec::new()
        };
        self.links
            .iter()
            .filter(|l| !heard.contains(&l.id) && !covered.contains(&l.peer))
            .map(|l| l.id)
            .collect()
    }

    /// The next action for the caller, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Mesh::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.relays.next_due(), self.hello_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends a directed packet on its route, or floods and stores it. `from` is the arrival link.
    pub(crate) fn forward_directed(
        &mut self,
        key: PacketKey,
        dest: PeerId,
        bytes: Bytes,
        from: Option<LinkId>,
        now: Instant,
    ) {
        if let Some(link) = self.next_hop(&dest, from, now) {
            self.transmit(link, bytes);
            return;
        }
        let stored_before = bytes
            .get(wire::FLAGS_OFFSET)
            .is_some_and(|f| f & FLAG_STORED != 0);
        if !stored_before {
            let held = wire::with_relay_fields(
                &bytes,
                bytes[wire::TTL_OFFSET],
                bytes[wire::HOPS_OFFSET],
                FLAG_STORED,
            );
            // The links up now get the packet from the flood below; the store offers it only on
            // links that come up later.
            if !self.store.insert(key, dest, held, now) {
                self.stats.overloaded += 1;
            }
        }
        match from {
            None => self.flood_now(&bytes, None),
            Some(link) => self.schedule_flood(key, bytes, link, now),
        }
    }

    /// The link towards `dest` other than `from`: a direct link to it, a neighbour that has it
    /// as a neighbour, else a learned route.
    fn next_hop(&self, dest: &PeerId, from: Option<LinkId>, now: Instant) -> Option<LinkId> {
        if let Some(l) = self.links.iter().find(|l| &l.peer == dest) {
            return Some(l.id);
        }
        if let Some(l) = self
            .links
            .iter()
            .find(|l| Some(l.id) != from && l.neighbours.contains(dest))
        {
            return Some(l.id);
        }
        let route = self.routes.get(dest, now)?;
        let up = self.links.iter().any(|l| l.id == route.link);
        (up && Some(route.link) != from).then_some(route.link)
    }

    /// Relays a flooded packet first heard on `from`, by the relay policy.
    pub(crate) fn schedule_flood(
        &mut self,
        key: PacketKey,
        bytes: Bytes,
        from: LinkId,
        now: Instant,
    ) {
        match self.config.relay {
            RelayPolicy::Flood => self.flood_now(&bytes, Some(from)),
            RelayPolicy::Suppressed {
                min_delay,
                max_delay,
                ..
            } => {
                let delay = if max_delay > min_delay {
                    self.rng.gen_range(min_delay..=max_delay)
                } else {
                    min_delay
                };
                if !self.relays.schedule(key, bytes, Some(from), now + delay) {
                    self.stats.overloaded += 1;
                }
            }
        }
    }

    /// Sends on every link but `except`.
    pub(crate) fn flood_now(&mut self, bytes: &Bytes, except: Option<LinkId>) {
        let links: Vec<LinkId> = self
            .links
            .iter()
            .map(|l| l.id)
            .filter(|l| Some(*l) != except)
            .collect();
        for link in links {
            self.transmit(link, bytes.clone());
        }
    }

    pub(crate) fn transmit(&mut self, link: LinkId, bytes: Bytes) {
        if self.actions.len() >= self.config.max_queued_actions {
            self.stats.overloaded += 1;
            return;
        }
        self.stats.transmissions += 1;
        self.actions.push_back(Action::Transmit { link, bytes });
    }

    pub(crate) fn deliver(&mut self, packet: &Packet, payload: Bytes) {
        if self.actions.len() >= self.config.max_queued_actions {
            self.stats.overloaded += 1;
            return;
        }
        self.stats.delivered += 1;
        self.actions.push_back(Action::Deliver {
            origin: packet.origin,
            destination: packet.destination,
            id: packet.id,
            hops: packet.hops,
            payload,
        });
    }
}

/// The digest the duplicate cache keeps of a packet: SHA-256 of its signed bytes and signature.
pub(crate) fn digest(packet: &Packet) -> Digest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&packet.signed_bytes());
    ctx.update(&packet.signature);
    let d = ctx.finish();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.as_ref()[..16]);
    out
}
