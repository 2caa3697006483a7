//! Forwarding: where a packet goes next. Directed packets take a direct link, a neighbour's
//! link or a learned route, else they are flooded and stored; flooded packets wait in the relay
//! scheduler and then go on the links that still need them (see `docs/mesh.md`).

use std::time::Instant;

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::Rng;

use bitcraps_transport_core::PeerId;

use crate::config::RelayPolicy;
use crate::dedup::PacketKey;
use crate::relay::CopyKind;
use crate::wire::{self, FLAG_STORED};
use crate::{LinkId, Mesh};

impl Mesh {
    /// Sends the relays that are due, or cancels those that enough copies suppressed.
    pub(crate) fn run_due_relays(&mut self, now: Instant) {
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
            let mut targets = self.relay_targets(&pending.heard, &pending.covering);
            let mut kind = CopyKind::Full;
            if pending.copies >= threshold {
                kind = CopyKind::Partial;
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
            if targets.len() > fanout {
                kind = CopyKind::Partial;
            }
            targets.truncate(fanout);
            for link in targets {
                match kind {
                    CopyKind::Partial => self.transmit_partial(link, pending.packet.clone()),
                    CopyKind::Full => self.transmit(link, pending.packet.clone()),
                }
            }
        }
    }

    /// The links a relay goes on: not those a copy came from, and (unless flooding naively)
    /// not those whose peer is a neighbour of a node a full relay came from (`covering`). That
    /// node sent to its own neighbours, or they were covered before it; see `docs/mesh.md`.
    fn relay_targets(&self, heard: &[LinkId], covering: &[LinkId]) -> Vec<LinkId> {
        let prune = matches!(self.config.relay, RelayPolicy::Suppressed { .. });
        let covered: Vec<PeerId> = if prune {
            self.links
                .iter()
                .filter(|l| covering.contains(&l.id))
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

    /// Sends a directed packet on its route, or floods and stores it. `from` is the arrival link
    /// and the kind of copy that came on it.
    pub(crate) fn forward_directed(
        &mut self,
        key: PacketKey,
        dest: PeerId,
        bytes: Bytes,
        from: Option<(LinkId, CopyKind)>,
        now: Instant,
    ) {
        if let Some(link) = self.next_hop(&dest, from.map(|(l, _)| l), now) {
            self.transmit_partial(link, bytes);
            return;
        }
        let stored_before = wire::flags_of(&bytes) & FLAG_STORED != 0;
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
            Some((link, kind)) => self.schedule_flood(key, bytes, link, kind, now),
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
        kind: CopyKind,
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
                if !self
                    .relays
                    .schedule(key, bytes, Some(from), kind, now + delay)
                {
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
}
