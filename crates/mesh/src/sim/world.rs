//! The simulated world: nodes, links, the event queue and the workload.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use bitcraps_transport_core::{Keypair, PeerId};

use super::metrics::{MemoryPeak, SimReport};
use super::topology::{self, Grid, Pos};
use super::{SimConfig, TopologySummary};
use crate::wire::MessageId;
use crate::{Action, LinkId, Mesh};

/// What happens at an instant of virtual time.
#[derive(Debug)]
pub(crate) enum Event {
    Arrive { to: usize, link: u64, bytes: Bytes },
    Timer { node: usize },
    SendBroadcast,
    SendDirected,
    Reply { from: usize, to: usize },
    ChurnTick,
    Rejoin { node: usize },
    Relink { node: usize },
    WallUp,
    WallDown,
}

struct Queued(Duration, u64, Event);

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

pub(crate) struct Node {
    pub(crate) mesh: Mesh,
    pub(crate) online: bool,
    timer: Option<Duration>,
}

/// One message of the workload and what became of it.
pub(crate) struct Msg {
    pub(crate) dest: Option<usize>,
    pub(crate) origin: usize,
    pub(crate) sent: Duration,
    pub(crate) counted: bool,
    pub(crate) expected: u64,
    pub(crate) deliveries: HashMap<usize, u32>,
    pub(crate) arrivals: u64,
    pub(crate) transmissions: u64,
    pub(crate) naive: u64,
    pub(crate) is_request: bool,
    pub(crate) across_wall: bool,
    pub(crate) hops: Vec<f64>,
    pub(crate) latency: Vec<f64>,
}

pub(crate) struct World<'a> {
    pub(crate) cfg: &'a SimConfig,
    pub(crate) rng: StdRng,
    base: Instant,
    pub(crate) now: Duration,
    pub(crate) nodes: Vec<Node>,
    pub(crate) pos: Vec<Pos>,
    pub(crate) grid: Grid,
    pub(crate) side: f64,
    pub(crate) adj: Vec<Vec<usize>>,
    /// Link id and per-direction busy-until (index 0: low to high node), by node pair.
    pub(crate) links: HashMap<(usize, usize), (u64, [Duration; 2])>,
    pub(crate) link_by_id: HashMap<u64, (usize, usize)>,
    next_link: u64,
    events: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    pub(crate) msgs: Vec<Msg>,
    pub(crate) msg_index: HashMap<(PeerId, MessageId), usize>,
    pub(crate) peers: Vec<PeerId>,
    pub(crate) wall: bool,
    pub(crate) cut: Vec<(usize, usize)>,
    pub(crate) memory: MemoryPeak,
    pub(crate) summary: Option<TopologySummary>,
    pub(crate) churn_events: u64,
    churn_acc: f64,
    pub(crate) duplicate_deliveries: u64,
}

impl<'a> World<'a> {
    pub(crate) fn new(cfg: &'a SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let side = topology::side_for(cfg.nodes, cfg.range, cfg.density);
        // Place, link, and keep the largest connected component.
        let placed: Vec<Pos> = (0..cfg.nodes)
            .map(|_| topology::random_pos(&mut rng, side))
            .collect();
        let mut grid = Grid::new(side, cfg.range);
        for (n, p) in placed.iter().enumerate() {
            grid.insert(n, *p);
        }
        let mut adj = vec![Vec::new(); cfg.nodes];
        let mut order: Vec<usize> = (0..cfg.nodes).collect();
        rand::seq::SliceRandom::shuffle(&mut order[..], &mut rng);
        for &n in &order {
            let near = grid.near(placed[n], cfg.range, &placed);
            for m in topology::fill_links(n, cfg.link_cap, &near, &adj, &mut rng, |_, _| true) {
                adj[n].push(m);
                adj[m].push(n);
            }
        }
        let kept = topology::largest_component(&adj);
        let remap: HashMap<usize, usize> = kept.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let pos: Vec<Pos> = kept.iter().map(|&n| placed[n]).collect();
        let kadj: Vec<Vec<usize>> = kept
            .iter()
            .map(|&n| adj[n].iter().map(|m| remap[m]).collect())
            .collect();
        let mut grid = Grid::new(side, cfg.range);
        for (n, p) in pos.iter().enumerate() {
            grid.insert(n, *p);
        }
        let links_count: usize = kadj.iter().map(Vec::len).sum::<usize>() / 2;
        let summary = TopologySummary {
            placed: cfg.nodes,
            kept: kept.len(),
            side,
            links: links_count,
            mean_degree: 2.0 * links_count as f64 / kept.len().max(1) as f64,
            diameter: topology::diameter(&kadj),
        };
        let mut nodes = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..kept.len() {
            let mut secret = [0u8; 32];
            rng.fill_bytes(&mut secret);
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let key = Keypair::from_secret_bytes(secret);
            peers.push(key.peer_id());
            let mesh = Mesh::new(key, cfg.mesh.clone(), seed).expect("validated by sim::run");
            nodes.push(Node {
                mesh,
                online: true,
                timer: None,
            });
        }
        let mut world = Self {
            cfg,
            rng,
            base: Instant::now(),
            now: Duration::ZERO,
            adj: vec![Vec::new(); nodes.len()],
            nodes,
            pos,
            grid,
            side,
            links: HashMap::new(),
            link_by_id: HashMap::new(),
            next_link: 1,
            events: BinaryHeap::new(),
            seq: 0,
            msgs: Vec::new(),
            msg_index: HashMap::new(),
            peers,
            wall: false,
            cut: Vec::new(),
            memory: MemoryPeak::default(),
            summary: Some(summary),
            churn_events: 0,
            churn_acc: 0.0,
            duplicate_deliveries: 0,
        };
        for (a, ns) in kadj.iter().enumerate() {
            for &b in ns {
                if a < b {
                    world.link_up(a, b);
                }
            }
        }
        world
    }

    pub(crate) fn next_link_id(&mut self) -> u64 {
        self.next_link += 1;
        self.next_link
    }

    pub(crate) fn churn_acc_add(&mut self, x: f64) {
        self.churn_acc += x;
    }

    /// Takes one node's worth of accumulated churn, if there is one.
    pub(crate) fn take_churn(&mut self) -> bool {
        if self.churn_acc >= 1.0 {
            self.churn_acc -= 1.0;
            true
        } else {
            false
        }
    }

    pub(crate) fn instant(&self) -> Instant {
        self.base + self.now
    }

    pub(crate) fn push(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.events.push(Reverse(Queued(at, self.seq, event)));
    }

    fn end(&self) -> Duration {
        let mut end = Duration::from_secs(1) + self.cfg.send_window + self.cfg.drain;
        if self.cfg.partition {
            end = end.max(self.cfg.partition_start + self.cfg.partition_time + self.cfg.drain);
        }
        end
    }

    pub(crate) fn run(mut self) -> SimReport {
        let window = self.cfg.send_window.as_secs_f64();
        for i in 0..self.cfg.broadcasts + self.cfg.directed {
            let at = Duration::from_secs_f64(1.0 + self.rng.gen_range(0.0..window.max(1e-3)));
            let event = if i < self.cfg.broadcasts {
                Event::SendBroadcast
            } else {
                Event::SendDirected
            };
            self.push(at, event);
        }
        if self.cfg.churn > 0.0 {
            self.push(Duration::from_secs(1), Event::ChurnTick);
        }
        if self.cfg.partition {
            self.push(self.cfg.partition_start, Event::WallUp);
            self.push(
                self.cfg.partition_start + self.cfg.partition_time,
                Event::WallDown,
            );
        }
        let end = self.end();
        while let Some(Reverse(Queued(at, _, event))) = self.events.pop() {
            if at > end {
                break;
            }
            self.now = at;
            self.handle(event);
        }
        self.now = end;
        self.report()
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Arrive { to, link, bytes } => {
                if !self.nodes[to].online || !self.link_by_id.contains_key(&link) {
                    return;
                }
                if let Some(m) = self.msg_of(&bytes) {
                    // Broadcasts: every node's copies; directed: the destination's copies.
                    if self.msgs[m].dest.is_none_or(|d| d == to) {
                        self.msgs[m].arrivals += 1;
                    }
                }
                let now = self.instant();
                let _ = self.nodes[to].mesh.handle_packet(LinkId(link), bytes, now);
                self.after(to);
            }
            Event::Timer { node } => {
                if self.nodes[node].timer == Some(self.now) {
                    self.nodes[node].timer = None;
                    let now = self.instant();
                    self.nodes[node].mesh.handle_timeout(now);
                    self.after(node);
                }
            }
            Event::SendBroadcast => {
                if let Some(origin) = self.random_online(None) {
                    self.originate(origin, None, false);
                }
            }
            Event::SendDirected => {
                if let Some(origin) = self.random_online(None) {
                    if let Some(dest) = self.random_online(Some(origin)) {
                        self.originate(origin, Some(dest), true);
                    }
                }
            }
            Event::Reply { from, to } => {
                if self.nodes[from].online {
                    self.originate(from, Some(to), false);
                }
            }
            Event::ChurnTick => self.churn_tick(),
            Event::Rejoin { node } => self.rejoin(node),
            Event::Relink { node } => self.relink(node),
            Event::WallUp => self.wall_up(),
            Event::WallDown => self.wall_down(),
        }
    }

    pub(crate) fn random_online(&mut self, not: Option<usize>) -> Option<usize> {
        for _ in 0..64 {
            let n = self.rng.gen_range(0..self.nodes.len());
            if self.nodes[n].online && Some(n) != not {
                return Some(n);
            }
        }
        None
    }

    pub(crate) fn side_of(&self, n: usize) -> bool {
        self.pos[n].0 < self.side / 2.0
    }

    /// Drains a node's actions into the world and re-arms its timer.
    pub(crate) fn after(&mut self, n: usize) {
        self.memory.update(&self.nodes[n].mesh.memory());
        let mut actions = Vec::new();
        while let Some(a) = self.nodes[n].mesh.poll_action() {
            actions.push(a);
        }
        for action in actions {
            match action {
                Action::Transmit { link, bytes } => self.transmit(n, link.0, bytes),
                Action::Deliver {
                    origin, id, hops, ..
                } => self.delivered(n, origin, id, hops),
            }
        }
        if let Some(at) = self.nodes[n].mesh.poll_timeout() {
            let at = at.saturating_duration_since(self.base).max(self.now);
            if self.nodes[n].timer.is_none_or(|t| at < t) {
                self.nodes[n].timer = Some(at);
                self.push(at, Event::Timer { node: n });
            }
        }
    }

    fn transmit(&mut self, from: usize, link: u64, bytes: Bytes) {
        let Some(&(a, b)) = self.link_by_id.get(&link) else {
            return;
        };
        if let Some(m) = self.msg_of(&bytes) {
            self.msgs[m].transmissions += 1;
        }
        let (to, dir) = if from == a { (b, 0) } else { (a, 1) };
        let air_bits = (bytes.len() + self.cfg.packet_overhead) as f64 * 8.0;
        let airtime = Duration::from_secs_f64(air_bits / self.cfg.bits_per_second.max(1) as f64);
        let jitter = self.rng.gen_range(Duration::ZERO..=self.cfg.latency_jitter);
        let Some(state) = self.links.get_mut(&(a, b)) else {
            return;
        };
        let start = state.1[dir].max(self.now);
        state.1[dir] = start + airtime;
        let arrival = start + airtime + self.cfg.latency + jitter;
        self.push(arrival, Event::Arrive { to, link, bytes });
    }
}
