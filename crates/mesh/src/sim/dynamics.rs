//! Links coming and going: link up and down, churn, relinking, and the partition's wall.

use std::time::Duration;

use super::topology;
use super::world::{Event, World};
use crate::LinkId;

impl World<'_> {
    /// Opens a link between two online nodes and tells both engines.
    pub(crate) fn link_up(&mut self, a: usize, b: usize) {
        let (a, b) = (a.min(b), a.max(b));
        if a == b || self.links.contains_key(&(a, b)) {
            return;
        }
        let id = self.next_link_id();
        self.links.insert((a, b), (id, [Duration::ZERO; 2]));
        self.link_by_id.insert(id, (a, b));
        self.adj[a].push(b);
        self.adj[b].push(a);
        let now = self.instant();
        let (pa, pb) = (self.peers[a], self.peers[b]);
        self.nodes[a].mesh.link_up(LinkId(id), pb, now);
        self.nodes[b].mesh.link_up(LinkId(id), pa, now);
        self.after(a);
        self.after(b);
    }

    /// Closes a link and tells both engines.
    pub(crate) fn link_down(&mut self, a: usize, b: usize) {
        let (a, b) = (a.min(b), a.max(b));
        let Some((id, _)) = self.links.remove(&(a, b)) else {
            return;
        };
        self.link_by_id.remove(&id);
        self.adj[a].retain(|&n| n != b);
        self.adj[b].retain(|&n| n != a);
        let now = self.instant();
        self.nodes[a].mesh.link_down(LinkId(id), now);
        self.nodes[b].mesh.link_down(LinkId(id), now);
        self.after(a);
        self.after(b);
    }

    /// Links `node` to in-range online nodes with free slots (not across a standing wall).
    pub(crate) fn relink(&mut self, node: usize) {
        if !self.nodes[node].online {
            return;
        }
        let near = self.grid.near(self.pos[node], self.cfg.range, &self.pos);
        let wall = self.wall;
        let sides: Vec<bool> = near.iter().map(|&n| self.side_of(n)).collect();
        let my_side = self.side_of(node);
        let allowed_set: Vec<usize> = near
            .iter()
            .zip(&sides)
            .filter(|(_, &s)| !wall || s == my_side)
            .map(|(&n, _)| n)
            .collect();
        let picks = topology::fill_links(
            node,
            self.cfg.link_cap,
            &allowed_set,
            &self.adj,
            &mut self.rng,
            |_, _| true,
        );
        for m in picks {
            self.link_up(node, m);
        }
    }

    /// Each simulated second, `churn / 60` of the online nodes leave; each rejoins later.
    pub(crate) fn churn_tick(&mut self) {
        let online = self.nodes.iter().filter(|n| n.online).count();
        self.churn_acc_add(self.cfg.churn * online as f64 / 60.0);
        while self.take_churn() {
            let Some(n) = self.random_online(None) else {
                break;
            };
            self.leave(n);
        }
        self.push(self.now + Duration::from_secs(1), Event::ChurnTick);
    }

    fn leave(&mut self, node: usize) {
        self.churn_events += 1;
        let neighbours = self.adj[node].clone();
        for m in &neighbours {
            self.link_down(node, *m);
        }
        self.nodes[node].online = false;
        self.grid.remove(node, self.pos[node]);
        let back = self.now + self.cfg.offline_time;
        self.push(back, Event::Rejoin { node });
        for m in neighbours {
            self.push(self.now + self.cfg.relink_delay, Event::Relink { node: m });
        }
    }

    /// A node that left comes back at a new random place.
    pub(crate) fn rejoin(&mut self, node: usize) {
        self.pos[node] = topology::random_pos(&mut self.rng, self.side);
        self.grid.insert(node, self.pos[node]);
        self.nodes[node].online = true;
        self.relink(node);
    }

    /// The wall goes up: every link across the middle of the plane fails; nodes do not replace
    /// them while it stands.
    pub(crate) fn wall_up(&mut self) {
        self.wall = true;
        let crossing: Vec<(usize, usize)> = self
            .links
            .keys()
            .copied()
            .filter(|&(a, b)| self.side_of(a) != self.side_of(b))
            .collect();
        let mut crossing = crossing;
        crossing.sort_unstable();
        for &(a, b) in &crossing {
            self.link_down(a, b);
        }
        self.cut = crossing;
    }

    /// The wall falls: the cut links come back where both ends are online with a free slot.
    pub(crate) fn wall_down(&mut self) {
        self.wall = false;
        for (a, b) in std::mem::take(&mut self.cut) {
            let cap = self.cfg.link_cap;
            if self.nodes[a].online
                && self.nodes[b].online
                && self.adj[a].len() < cap
                && self.adj[b].len() < cap
            {
                self.link_up(a, b);
            }
        }
    }
}
