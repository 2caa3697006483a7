//! A deterministic harness for two peer state machines (quinn-proto's `Pair` idea): a dialer
//! `a` with routes, a listener `b` without, a simulated network with virtual time, and a
//! scripted application on each side. Every fault is a knob: per-route dial outcome, loss,
//! duplication and reordering on lossy links, a link going dark, a link cut, a slow
//! application, a window-sized send queue on each connection.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bitcraps_transport_core::{CloseReason, Error as CoreError, TransportAddress};
use bytes::Bytes;
use rand::{Rng, SeedableRng};

use crate::machine::{
    Action, DialId, DisconnectReason, LinkFailure, LinkId, LinkInfo, MachineConfig, MessageId,
    PeerMachine, UndeliveredReason,
};
use crate::policy::{BreakerConfig, CircuitBreaker, Priority};
use crate::CoordinatorConfig;

/// One-way latency of every simulated link.
pub(crate) const LATENCY: Duration = Duration::from_millis(1);
/// Transport messages a connection's send queue holds before it blocks.
const QUEUE: usize = 64;

/// How a route behaves when dialed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteMode {
    /// Connects after one round trip.
    Up,
    /// Refused at once.
    Refused,
    /// Never answers: fails after the dial timeout.
    Blackhole,
}

/// One simulated route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteSpec {
    pub(crate) mode: RouteMode,
    pub(crate) reliable: bool,
    pub(crate) loss: f64,
    pub(crate) duplicate: f64,
    pub(crate) reorder: f64,
}

impl RouteSpec {
    pub(crate) fn reliable() -> Self {
        Self {
            mode: RouteMode::Up,
            reliable: true,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }

    pub(crate) fn lossy(loss: f64, duplicate: f64, reorder: f64) -> Self {
        Self {
            mode: RouteMode::Up,
            reliable: false,
            loss,
            duplicate,
            reorder,
        }
    }
}

#[derive(Debug)]
struct Wire {
    route: usize,
    /// The other end's id (same number on both sides).
    dark: bool,
    /// In flight toward a (0) and toward b (1).
    queue: [BTreeMap<(Instant, u64), Bytes>; 2],
    /// Written but not yet "on the wire" (the sender's connection queue).
    sendq: [usize; 2],
    blocked: [bool; 2],
    /// The side that closed it: the other side gets what is in flight, then the loss.
    closed_by: Option<usize>,
}

/// What one side's application saw.
#[derive(Debug, Default)]
pub(crate) struct App {
    /// (lane, payload) in delivery order.
    pub(crate) delivered: Vec<(u8, Bytes)>,
    pub(crate) receipts: HashMap<MessageId, Result<(), UndeliveredReason>>,
    pub(crate) undelivered: Vec<MessageId>,
    pub(crate) ended: Option<DisconnectReason>,
    /// Messages it takes per millisecond at most (`None`: all).
    pub(crate) pace: Option<usize>,
    pub(crate) released: usize,
    pub(crate) link_failures: Vec<LinkFailure>,
    /// Transport messages written.
    pub(crate) frames: usize,
}

/// The two machines and the network between them.
pub(crate) struct Pair {
    pub(crate) now: Instant,
    pub(crate) a: PeerMachine,
    pub(crate) b: PeerMachine,
    pub(crate) apps: [App; 2],
    pub(crate) routes: Vec<RouteSpec>,
    wires: HashMap<LinkId, Wire>,
    dials: Vec<(Instant, DialId, usize, bool)>,
    next_link: u64,
    tie: u64,
    rng: rand::rngs::StdRng,
    next_msg: u64,
    pub(crate) dial_timeout: Duration,
}

/// The machine settings the tests use: the coordinator's defaults, with a window of 64
/// messages and 1 MiB, and no idle timeout.
pub(crate) fn config() -> MachineConfig {
    let mut c = MachineConfig::from_coordinator(&CoordinatorConfig::default(), 60_000);
    c.recv_window = 64;
    c.recv_window_bytes = 1 << 20;
    c.idle_timeout = None;
    c
}

pub(crate) fn addr(i: usize) -> TransportAddress {
    TransportAddress::Memory(i as u64 + 1)
}

impl Pair {
    pub(crate) fn new(routes: Vec<RouteSpec>, seed: u64) -> Self {
        Self::with_config(routes, seed, config(), config())
    }

    pub(crate) fn with_config(
        routes: Vec<RouteSpec>,
        seed: u64,
        a: MachineConfig,
        b: MachineConfig,
    ) -> Self {
        let now = Instant::now();
        Self {
            now,
            a: PeerMachine::new(a, 0xA, None, now),
            b: PeerMachine::new(b, 0xB, None, now),
            apps: [App::default(), App::default()],
            routes,
            wires: HashMap::new(),
            dials: Vec::new(),
            next_link: 0,
            tie: 0,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            next_msg: 0,
            dial_timeout: Duration::from_secs(10),
        }
    }

    /// `a` connects over every route.
    pub(crate) fn connect(&mut self) {
        let breakers = (0..self.routes.len())
            .map(|i| {
                let b = CircuitBreaker::new(BreakerConfig::default(), i as u64);
                (addr(i), b, crate::policy::BreakerState::Closed)
            })
            .collect();
        self.a.connect(breakers, self.now);
    }

    /// `a` sends one message; the payload is its sequence number (8 bytes) padded to `len`.
    pub(crate) fn send(&mut self, priority: Priority, len: usize, receipt: bool) -> MessageId {
        self.next_msg += 1;
        let id = MessageId(self.next_msg);
        let mut p = self.next_msg.to_be_bytes().to_vec();
        p.resize(len.max(8), 0);
        self.a
            .submit(id, Bytes::from(p), priority, receipt, self.now);
        id
    }

    fn machine(&mut self, side: usize) -> &mut PeerMachine {
        if side == 0 {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    /// From now on, everything on `route` vanishes (both ways).
    pub(crate) fn go_dark(&mut self, route: usize) {
        for w in self.wires.values_mut().filter(|w| w.route == route) {
            w.dark = true;
        }
        self.routes[route].mode = RouteMode::Blackhole;
    }

    /// `route` works again for new dials.
    pub(crate) fn heal(&mut self, route: usize) {
        self.routes[route].mode = RouteMode::Up;
    }

    /// Cuts every connection on `route`: both ends see it fail.
    pub(crate) fn cut(&mut self, route: usize) {
        let ids: Vec<LinkId> = self
            .wires
            .iter()
            .filter(|(_, w)| w.route == route)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.wires.remove(&id);
            let f = || LinkFailure::Failed(CoreError::LinkLost("cut".into()));
            self.a.link_lost(id, f(), self.now);
            self.b.link_lost(id, f(), self.now);
        }
    }

    fn process_actions(&mut self, side: usize) -> bool {
        let mut any = false;
        while let Some(action) = self.machine(side).poll_action() {
            any = true;
            match action {
                Action::Dial { dial, route, .. } => {
                    let spec = self.routes[route];
                    let (at, ok) = match spec.mode {
                        RouteMode::Up => (self.now + LATENCY * 2, true),
                        RouteMode::Refused => (self.now + LATENCY * 2, false),
                        RouteMode::Blackhole => (self.now + self.dial_timeout, false),
                    };
                    self.dials.push((at, dial, route, ok));
                }
                Action::Close { link, farewell, .. } => {
                    let now = self.now;
                    if let Some(w) = self.wires.get_mut(&link) {
                        let other = 1 - side;
                        if !w.dark {
                            for f in farewell {
                                self.tie += 1;
                                w.queue[other].insert((now + LATENCY, self.tie), f);
                            }
                        }
                        w.queue[side].clear();
                        if w.dark || w.closed_by == Some(other) {
                            // Both ends closed, or nothing reaches the other end anyway.
                            self.wires.remove(&link);
                        } else {
                            w.closed_by = Some(side);
                        }
                    }
                }
                Action::Notify(n) => {
                    if let crate::machine::Notice::LinkFailed { failure, .. } = n {
                        self.apps[side].link_failures.push(failure);
                    }
                }
                Action::Receipt { id, outcome } => {
                    assert!(
                        self.apps[side].receipts.insert(id, outcome).is_none(),
                        "two outcomes for {id}"
                    );
                }
                Action::Undelivered { ids, .. } => self.apps[side].undelivered.extend(ids),
                Action::Release { messages, .. } => self.apps[side].released += messages,
                Action::Ended(r) => self.apps[side].ended = Some(r),
            }
        }
        any
    }

    fn transmit(&mut self, side: usize) -> bool {
        let now = self.now;
        let mut any = false;
        while let Some((link, frame)) = self.machine(side).poll_transmit(now) {
            any = true;
            self.apps[side].frames += 1;
            let to = 1 - side;
            let Some(w) = self.wires.get_mut(&link) else {
                continue;
            };
            let spec = self.routes[w.route];
            w.sendq[side] += 1;
            if w.sendq[side] >= QUEUE && !w.blocked[side] {
                w.blocked[side] = true;
                self.machine(side).set_blocked(link, true);
            }
            let w = self.wires.get_mut(&link).expect("wire");
            if w.dark || (!spec.reliable && self.rng.gen_bool(spec.loss)) {
                continue;
            }
            let copies = if !spec.reliable && self.rng.gen_bool(spec.duplicate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let mut at = now + LATENCY;
                if !spec.reliable && self.rng.gen_bool(spec.reorder) {
                    at += Duration::from_micros(self.rng.gen_range(1..3000));
                }
                self.tie += 1;
                w.queue[to].insert((at, self.tie), frame.clone());
            }
        }
        any
    }

    fn deliver_app(&mut self, side: usize) -> bool {
        let mut budget = self.apps[side].pace.unwrap_or(usize::MAX);
        let now = self.now;
        let mut any = false;
        while budget > 0 {
            let Some(d) = self.machine(side).poll_delivery(now) else {
                break;
            };
            any = true;
            self.apps[side].delivered.push((d.lane, d.payload));
            budget -= 1;
        }
        any
    }

    /// Processes everything due now on both sides until nothing changes.
    fn settle(&mut self) {
        // A paced application takes its budget once per step.
        let mut delivered = [false; 2];
        for _ in 0..1000 {
            let mut any = false;
            for (side, done) in delivered.iter_mut().enumerate() {
                any |= self.process_actions(side);
                if self.apps[side].pace.is_none() || !*done {
                    let d = self.deliver_app(side);
                    *done |= d;
                    any |= d;
                }
                any |= self.transmit(side);
                any |= self.process_actions(side);
            }
            if !any {
                return;
            }
        }
        panic!("the machines never settle");
    }

    /// The next time something happens.
    fn next_event(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t: Instant| t.min(x)));
        for w in self.wires.values() {
            if let Some(by) = w.closed_by {
                if w.queue[1 - by].is_empty() {
                    at(self.now);
                }
            }
            for q in &w.queue {
                if let Some(((when, _), _)) = q.iter().next() {
                    at(*when);
                }
            }
        }
        for (when, ..) in &self.dials {
            at(*when);
        }
        if let Some(x) = self.a.poll_timeout() {
            at(x);
        }
        if let Some(x) = self.b.poll_timeout() {
            at(x);
        }
        for side in 0..2 {
            if self.apps[side].pace.is_some() {
                let m = if side == 0 { &self.a } else { &self.b };
                if m.has_delivery(self.now + Duration::from_millis(1)) {
                    at(self.now + Duration::from_millis(1));
                }
            }
        }
        t
    }

    /// Runs until `until` (virtual time), or until nothing is left to happen.
    pub(crate) fn run_until(&mut self, until: Instant) {
        self.settle();
        let mut stuck = 0u32;
        while let Some(t) = self.next_event() {
            if t > until {
                break;
            }
            if t <= self.now {
                stuck += 1;
                assert!(stuck < 10_000, "stuck at one instant: {}", self.describe());
            } else {
                stuck = 0;
            }
            self.now = self.now.max(t);
            self.step();
        }
        self.now = self.now.max(until);
        self.settle();
    }

    fn describe(&self) -> String {
        let wires: Vec<String> = self
            .wires
            .iter()
            .map(|(id, w)| {
                format!(
                    "{id:?} route {} dark {} closed_by {:?} q {:?}",
                    w.route,
                    w.dark,
                    w.closed_by,
                    [w.queue[0].len(), w.queue[1].len()]
                )
            })
            .collect();
        format!(
            "wires {wires:?}, dials {}, a timeout {:?}, b timeout {:?}, now {:?}",
            self.dials.len(),
            self.a
                .poll_timeout()
                .map(|t| t.saturating_duration_since(self.now)),
            self.b
                .poll_timeout()
                .map(|t| t.saturating_duration_since(self.now)),
            self.now
        )
    }

    pub(crate) fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn step(&mut self) {
        let now = self.now;
        // Dials that complete now.
        let (due, rest): (Vec<_>, Vec<_>) = self.dials.drain(..).partition(|d| d.0 <= now);
        self.dials = rest;
        for (_, dial, route, ok) in due {
            let ok = ok && self.routes[route].mode == RouteMode::Up;
            if ok {
                self.next_link += 1;
                let link = LinkId(self.next_link);
                let spec = self.routes[route];
                let info = LinkInfo {
                    remote: addr(route),
                    reliable: spec.reliable,
                    max_message: 64 * 1024,
                };
                let wire = Wire {
                    route,
                    dark: false,
                    queue: [BTreeMap::new(), BTreeMap::new()],
                    sendq: [0, 0],
                    blocked: [false, false],
                    closed_by: None,
                };
                self.wires.insert(link, wire);
                self.a.dial_succeeded(dial, link, info.clone(), now);
                let inbound = LinkInfo {
                    remote: TransportAddress::Memory(1000 + link.0),
                    ..info
                };
                self.b.attach(link, inbound, now);
            } else {
                let e = CoreError::Timeout {
                    operation: "dial",
                    after: self.dial_timeout,
                };
                self.a.dial_failed(dial, e, now);
            }
        }
        // Network deliveries due now, and the send queues draining.
        let ids: Vec<LinkId> = self.wires.keys().copied().collect();
        for id in ids {
            for to in 0..2 {
                while let Some(w) = self.wires.get_mut(&id) {
                    let from = 1 - to;
                    if w.sendq[from] > 0 {
                        w.sendq[from] = 0;
                        if w.blocked[from] {
                            w.blocked[from] = false;
                            self.machine(from).set_blocked(id, false);
                        }
                    }
                    let Some(w) = self.wires.get_mut(&id) else {
                        break;
                    };
                    let Some((&key, _)) = w.queue[to].iter().next() else {
                        if w.closed_by == Some(from) {
                            self.wires.remove(&id);
                            let reason = CloseReason::Remote("closed".into());
                            self.machine(to)
                                .link_lost(id, LinkFailure::Closed(reason), now);
                        }
                        break;
                    };
                    if key.0 > now {
                        break;
                    }
                    let frame = w.queue[to].remove(&key).expect("queued");
                    self.machine(to).received(id, frame, now);
                }
            }
        }
        self.a.handle_timeout(now);
        self.b.handle_timeout(now);
        self.settle();
    }

    /// The sequence numbers `b`'s application received, per lane, in order.
    pub(crate) fn received(&self, lane: u8) -> Vec<u64> {
        self.apps[1]
            .delivered
            .iter()
            .filter(|(l, _)| *l == lane)
            .map(|(_, p)| u64::from_be_bytes(p[..8].try_into().expect("8 bytes")))
            .collect()
    }
}

/// Quick access to a fresh machine for unit tests.
pub(crate) fn lone(now: Instant) -> PeerMachine {
    PeerMachine::new(config(), 7, None, now)
}

/// Silences an unused warning in builds that use only some helpers.
#[allow(dead_code)]
fn _uses(_: VecDeque<u8>, _: Priority) {}
