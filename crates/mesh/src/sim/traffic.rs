//! The workload: originating messages, recognising their packets, recording deliveries.

use std::collections::HashMap;

use bytes::Bytes;

use bitcraps_transport_core::PeerId;

use super::topology;
use super::world::{Event, Msg, World};
use crate::wire::{Destination, MessageId};

impl World<'_> {
    pub(crate) fn originate(&mut self, origin: usize, dest: Option<usize>, is_request: bool) {
        let payload = Bytes::from(vec![0xab; self.cfg.payload_len]);
        let destination = dest.map_or(Destination::Broadcast, |d| Destination::Peer(self.peers[d]));
        let now = self.instant();
        let Ok(id) = self.nodes[origin].mesh.send(destination, payload, now) else {
            return;
        };
        let (expected, naive) = match dest {
            None => self.reach_and_naive(origin),
            Some(_) => (1, 0),
        };
        let counted = dest.is_none_or(|d| self.nodes[d].online);
        let across_wall =
            self.wall && dest.is_some_and(|d| self.side_of(d) != self.side_of(origin));
        self.msg_index
            .insert((self.peers[origin], id), self.msgs.len());
        self.msgs.push(Msg {
            dest,
            origin,
            sent: self.now,
            counted,
            expected,
            deliveries: HashMap::new(),
            arrivals: 0,
            transmissions: 0,
            naive,
            is_request,
            across_wall,
            hops: Vec::new(),
            latency: Vec::new(),
        });
        self.after(origin);
    }

    /// Nodes a broadcast from `origin` can reach now, and naive flooding's transmissions.
    fn reach_and_naive(&self, origin: usize) -> (u64, u64) {
        let dist = topology::bfs(&self.adj, origin);
        let mut reached = 0;
        let mut naive = self.adj[origin].len() as u64;
        for (n, d) in dist.iter().enumerate() {
            if n != origin && *d != usize::MAX {
                reached += 1;
                naive += self.adj[n].len().saturating_sub(1) as u64;
            }
        }
        (reached, naive)
    }

    pub(crate) fn msg_of(&self, bytes: &Bytes) -> Option<usize> {
        let origin = PeerId::from_bytes(bytes.get(5..37)?.try_into().ok()?).ok()?;
        let id = MessageId(bytes.get(37..53)?.try_into().ok()?);
        self.msg_index.get(&(origin, id)).copied()
    }

    pub(crate) fn delivered(&mut self, n: usize, origin: PeerId, id: MessageId, hops: u8) {
        let Some(&m) = self.msg_index.get(&(origin, id)) else {
            return;
        };
        let now = self.now;
        let msg = &mut self.msgs[m];
        if msg.dest.is_some_and(|d| d != n) {
            return;
        }
        let count = msg.deliveries.entry(n).or_insert(0);
        *count += 1;
        if *count > 1 {
            self.duplicate_deliveries += 1;
            return;
        }
        msg.hops.push(f64::from(hops) + 1.0);
        msg.latency.push(super::metrics::ms(now - msg.sent));
        if msg.is_request {
            let (from, to) = (n, msg.origin);
            self.push(now, Event::Reply { from, to });
        }
    }
}
