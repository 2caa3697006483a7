//! The [`Mesh`] engine: its state, the inputs other than packets, and the outputs.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use bitcraps_transport_core::{Keypair, PeerId};

use crate::config::{ConfigError, MeshConfig};
use crate::crypto;
use crate::dedup::{DedupCache, Digest};
use crate::relay::RelayScheduler;
use crate::routes::RouteTable;
use crate::store::Store;
use crate::wire::{self, Destination, MessageId, Packet};
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
    /// The most duplicate cache entries one origin holds.
    pub dedup_entries_one_origin: usize,
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
            dedup: DedupCache::new(
                config.dedup_capacity,
                config.dedup_per_origin,
                config.dedup_expiry,
            ),
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
            dedup_entries_one_origin: self.dedup.max_per_origin(),
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
            self.transmit_partial(link, bytes);
        }
        for bytes in self.store.offer_on(link, now) {
            self.stats.store_forwards += 1;
            self.transmit_partial(link, bytes);
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
        self.run_due_relays(now);
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

    /// Sends a copy marked PARTIAL: receivers must not assume our neighbours have it.
    pub(crate) fn transmit_partial(&mut self, link: LinkId, bytes: Bytes) {
        self.transmit(link, wire::with_flag(&bytes, wire::FLAG_PARTIAL));
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
