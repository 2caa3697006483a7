//! [`Mesh::handle_packet`]: checking, deduplicating, delivering and relaying a received packet.
//!
//! The order matters: decode, bound the TTL, look the packet up in the duplicate cache (a copy
//! of an accepted packet is counted for relay suppression and dropped; a different packet under
//! an accepted name is dropped as a forgery), verify the signature of a new packet before
//! anything else is done with it, record it, learn the route to its origin, then deliver and/or
//! relay it. Nothing from an unverified packet changes any state.

use std::time::Instant;

use bytes::Bytes;

use crate::crypto::{self, CryptoError};
use crate::dedup::Seen;
use crate::engine::digest;
use crate::relay::CopyKind;
use crate::routes::Learned;
use crate::wire::{self, DecodeError, Destination, Packet};
use crate::{LinkId, Mesh};

/// What became of an accepted packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// New and valid: delivered and/or relayed as its destination asks.
    New,
    /// A copy of a packet already accepted (counted for suppression).
    Duplicate,
    /// One of our own packets coming back.
    Own,
    /// A neighbour's list of its neighbours (kept for relay pruning).
    Neighbours,
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// It came on a link that is not up.
    #[error("packet on unknown link {0:?}")]
    UnknownLink(LinkId),
    /// A neighbour list not signed by the link's own peer, or with a TTL.
    #[error("neighbour list from a non-neighbour")]
    NotNeighbour,
    /// It does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Its TTL plus hop count exceeds our maximum TTL.
    #[error("ttl {ttl} + hops {hops} exceeds the maximum")]
    Ttl {
        /// The TTL.
        ttl: u8,
        /// The hop count.
        hops: u8,
    },
    /// Its signature is not its origin's.
    #[error("bad signature")]
    BadSignature,
    /// It differs from an accepted packet of the same origin and id (forged or altered).
    #[error("conflicts with an accepted packet")]
    Conflict,
    /// The duplicate cache is full of live entries.
    #[error("duplicate cache full")]
    Overloaded,
    /// A directed packet for us that does not decrypt (its origin sealed it wrongly).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl Mesh {
    /// Handles one packet received on `link`.
    pub fn handle_packet(
        &mut self,
        link: LinkId,
        bytes: Bytes,
        now: Instant,
    ) -> Result<Accepted, PacketError> {
        let result = self.accept(link, bytes, now);
        if matches!(result, Err(ref e) if *e != PacketError::Overloaded) {
            self.stats.rejected += 1;
        }
        result
    }

    fn accept(
        &mut self,
        link: LinkId,
        bytes: Bytes,
        now: Instant,
    ) -> Result<Accepted, PacketError> {
        let Some(at) = self.links.iter().position(|l| l.id == link) else {
            return Err(PacketError::UnknownLink(link));
        };
        let packet = Packet::decode(&bytes)?;
        if packet.destination == Destination::Neighbours {
            if packet.origin != self.links[at].peer || packet.ttl != 0 || packet.hops != 0 {
                return Err(PacketError::NotNeighbour);
            }
            if !crypto::verify(&packet) {
                return Err(PacketError::BadSignature);
            }
            self.links[at].neighbours = wire::parse_neighbours(&packet.payload)?;
            return Ok(Accepted::Neighbours);
        }
        if u16::from(packet.ttl) + u16::from(packet.hops) > u16::from(self.config.max_ttl) {
            return Err(PacketError::Ttl {
                ttl: packet.ttl,
                hops: packet.hops,
            });
        }
        let key = (packet.origin, packet.id);
        let digest = digest(&packet);
        match self.dedup.check(&key, &digest, now) {
            Seen::Copy => {
                self.stats.duplicates += 1;
                self.relays
                    .heard(&key, link, CopyKind::of_flags(packet.flags));
                return Ok(if packet.origin == self.me {
                    Accepted::Own
                } else {
                    Accepted::Duplicate
                });
            }
            Seen::Conflict => return Err(PacketError::Conflict),
            Seen::New => {}
        }
        if packet.origin == self.me {
            // Not in our cache (expired) yet claiming to be ours: never re-deliver or relay it.
            return Ok(Accepted::Own);
        }
        if !crypto::verify(&packet) {
            return Err(PacketError::BadSignature);
        }
        if !self.dedup.insert(key, digest, now) {
            self.stats.overloaded += 1;
            return Err(PacketError::Overloaded);
        }
        let learned = self
            .routes
            .learn(packet.origin, link, packet.hops.saturating_add(1), now);
        if learned == Learned::New {
            for held in self.store.take_for(&packet.origin, now) {
                self.stats.store_forwards += 1;
                self.transmit_partial(link, held);
            }
        }
        let kind = CopyKind::of_flags(packet.flags);
        let relay = (packet.ttl > 0).then(|| {
            // A relay's copy starts as a full relay; PARTIAL is set where it is sent otherwise.
            wire::with_relay_fields(
                &bytes,
                packet.ttl - 1,
                packet.hops.saturating_add(1),
                packet.flags & wire::FLAG_STORED,
            )
        });
        match packet.destination {
            Destination::Broadcast => {
                self.deliver(&packet, packet.payload.clone());
                if let Some(out) = relay {
                    self.schedule_flood(key, out, link, kind, now);
                }
            }
            Destination::Peer(dest) if dest == self.me => {
                let plain = crypto::open_directed(&self.keypair, &packet)?;
                self.deliver(&packet, plain);
            }
            Destination::Neighbours => {}
            Destination::Peer(dest) => {
                if let Some(out) = relay {
                    self.forward_directed(key, dest, out, Some((link, kind)), now);
                }
            }
        }
        Ok(Accepted::New)
    }
}
