//! The actor's routes and connections: attaching connections, failover, switch-back with
//! hysteresis, health checks, circuit breakers and the reconnect grace.
//!
//! Route selection (see COORDINATOR.md for the diagram):
//!
//! - The active connection is the one traffic uses. After a loss, the best live connection
//!   takes over (outbound ones by route preference, then inbound ones, newest first); if none
//!   is live, a failover pass dials the routes in preference order (the lost route last),
//!   skipping routes whose breaker refuses. A pass that connects nothing disconnects the peer.
//! - While the active connection is not on the most preferred route, each more preferred
//!   route is redialed when its breaker admits it (at most once per health interval). Once
//!   connected it is a standby that gets PINGs; after `switch_back_after` PONGs in a row it
//!   becomes active, and the old active connection is closed gracefully.
//! - A peer with no routes (it dialed us) follows the dialer: its newest connection becomes
//!   active. When its last connection ends it is kept for a grace period (the dial timeout
//!   plus the health interval) so its dedup state survives the dialer's failover.

use std::collections::VecDeque;
use std::time::Duration;

use bitcraps_transport_core::{
    AdmissionGuard, Connection, ConnectionSender, Error as CoreError, TransportAddress,
};
use tokio::time::Instant;

use super::actor::Actor;
use super::reader::Reader;
use super::{Ctl, LinkEnd};
use crate::envelope::{TYPE_PING, TYPE_PONG};
use crate::error::{CoordinatorError, Result};
use crate::event::{CoordinatorEvent, DisconnectReason};
use crate::policy::{Admission, CircuitBreaker, RttEstimator};
use crate::stats::PeerConnections;
use crate::Shared;

fn std_now(now: Instant) -> std::time::Instant {
    now.into_std()
}

/// One route: a transport address of the peer, with its breaker.
pub(super) struct Route {
    pub(super) addr: TransportAddress,
    pub(super) transport: usize,
    pub(super) breaker: CircuitBreaker,
    pub(super) dialing: bool,
    pub(super) next_attempt: Instant,
}

/// One open connection of the peer.
pub(super) struct Link {
    pub(super) id: u64,
    pub(super) sender: ConnectionSender,
    pub(super) route: Option<usize>,
    pub(super) listener: Option<u64>,
    pub(super) remote: TransportAddress,
    pub(super) transport: usize,
    pub(super) rtt: RttEstimator,
    /// The PING in flight: nonce, sent at, deadline.
    pub(super) outstanding: Option<(u64, Instant, Instant)>,
    pub(super) next_ping: Instant,
    pub(super) missed: u32,
    pub(super) pongs_in_row: u32,
    pub(super) pong_due: Option<u64>,
    pub(super) ping_due: bool,
    _guard: AdmissionGuard,
}

impl Link {
    pub(super) fn ping_sent(&mut self, nonce: u64, now: Instant) {
        self.outstanding = Some((nonce, now, now + self.rtt.rto()));
    }

    /// Closes gracefully in the background (the actor never waits on a close).
    pub(super) fn close(self, shared: &Shared, reason: &str) {
        shared.transport_counters[self.transport].connection_closed();
        let reason = reason.to_string();
        let sender = self.sender;
        tokio::spawn(async move {
            let _ = sender.close(&reason).await;
        });
    }

    /// 0 for the most preferred route; inbound connections after every route.
    fn rank(&self, routes: usize) -> usize {
        self.route.unwrap_or(routes)
    }
}

impl Actor {
    pub(super) fn on_connect(
        &mut self,
        routes: Vec<TransportAddress>,
        reply: tokio::sync::oneshot::Sender<Result<()>>,
        now: Instant,
    ) {
        let mut new_routes = Vec::new();
        for addr in routes {
            let Some(transport) = self.shared.transport_for(&addr) else {
                let _ = reply.send(Err(CoordinatorError::NoTransport(addr)));
                return;
            };
            // Keep the breaker of a route we already had.
            let existing = self.routes.iter().position(|r| r.addr == addr);
            let route = match existing {
                Some(i) => self.routes.swap_remove(i),
                None => Route {
                    breaker: self.shared.take_breaker(&addr),
                    addr,
                    transport,
                    dialing: false,
                    next_attempt: now,
                },
            };
            new_routes.push(route);
        }
        self.routes = new_routes;
        for link in &mut self.links {
            link.route = self.routes.iter().position(|r| r.addr == link.remote);
        }
        self.update_view();
        if self.active.is_some() {
            let _ = reply.send(Ok(()));
            return;
        }
        self.connect_waiters.push(reply);
        if self.pass.is_none() {
            self.start_pass(None, "no route tried".into(), now);
        }
    }

    /// Starts a failover pass over every route, `lost` last.
    fn start_pass(&mut self, lost: Option<usize>, why: String, now: Instant) {
        let mut order: VecDeque<usize> = (0..self.routes.len())
            .filter(|&i| Some(i) != lost)
            .collect();
        if let Some(l) = lost {
            order.push_back(l);
        }
        self.pass = Some((order, why));
        self.step_pass(now);
    }

    /// Dials the next admitted route of the pass, or gives up when none is left.
    fn step_pass(&mut self, now: Instant) {
        loop {
            let Some((order, last)) = &mut self.pass else {
                return;
            };
            if self.routes.iter().any(|r| r.dialing) {
                return;
            }
            let Some(i) = order.pop_front() else {
                let last = last.clone();
                self.pass = None;
                self.give_up(DisconnectReason::AllRoutesFailed { last });
                return;
            };
            match self.admit(i, now) {
                Ok(()) => {
                    self.dial(i);
                    return;
                }
                Err(retry) => {
                    if let Some((_, last)) = &mut self.pass {
                        *last = format!(
                            "{}: circuit breaker open (retry in {retry:?})",
                            self.routes[i].addr
                        );
                    }
                }
            }
        }
    }

    fn give_up(&mut self, reason: DisconnectReason) {
        let last = reason.to_string();
        for w in self.connect_waiters.drain(..) {
            let _ = w.send(Err(CoordinatorError::AllRoutesFailed {
                peer: self.peer,
                last: last.clone(),
            }));
        }
        self.done = Some(reason);
    }

    /// Asks route `i`'s breaker; emits a `Breaker` event if its state changed.
    fn admit(&mut self, i: usize, now: Instant) -> std::result::Result<(), Duration> {
        let answer = self.breaker_op(i, now, |b, t| b.admit(t));
        match answer {
            Admission::Allowed | Admission::Probe => Ok(()),
            Admission::Rejected { retry_after } => Err(retry_after),
        }
    }

    fn breaker_op<R>(
        &mut self,
        i: usize,
        now: Instant,
        f: impl FnOnce(&mut CircuitBreaker, std::time::Instant) -> R,
    ) -> R {
        let t = std_now(now);
        let route = &mut self.routes[i];
        let before = route.breaker.state(t);
        let r = f(&mut route.breaker, t);
        let after = route.breaker.state(t);
        if std::mem::discriminant(&before) != std::mem::discriminant(&after) {
            let route = route.addr.clone();
            self.emit(CoordinatorEvent::Breaker {
                peer: self.peer,
                route,
                state: after,
            });
        }
        r
    }

    fn dial(&mut self, i: usize) {
        let route = &mut self.routes[i];
        route.dialing = true;
        let transport = self.shared.transports[route.transport].clone();
        let addr = route.addr.clone();
        let peer = self.peer;
        let ctl = self.ctl_tx.clone();
        let timeout = self.shared.config.dial_timeout;
        let limiter = self.shared.limiter.clone();
        tokio::spawn(async move {
            let result =
                match tokio::time::timeout(timeout, transport.dial(&addr, Some(peer))).await {
                    Err(_) => Err(CoreError::Timeout {
                        operation: "dial",
                        after: timeout,
                    }),
                    Ok(Err(e)) => Err(e),
                    Ok(Ok(conn)) => match limiter
                        .admit(peer, bitcraps_transport_core::policy::Direction::Outbound)
                    {
                        Ok(guard) => Ok((conn, guard)),
                        Err(rejection) => {
                            let _ = conn.close("coordinator connection limit").await;
                            Err(CoreError::Limit(rejection))
                        }
                    },
                };
            let _ = ctl.send(Ctl::Dialed { route: i, result }).await;
        });
    }

    pub(super) fn on_dialed(
        &mut self,
        i: usize,
        result: bitcraps_transport_core::Result<(Connection, AdmissionGuard)>,
        now: Instant,
    ) {
        if i >= self.routes.len() {
            return;
        }
        self.routes[i].dialing = false;
        match result {
            Ok((conn, guard)) => {
                self.breaker_op(i, now, |b, t| b.on_success(t));
                let transport = self.routes[i].transport;
                self.attach(conn, guard, transport, Some(i), None, now);
            }
            Err(e) => {
                if e.limit_rejection().is_some() {
                    self.breaker_op(i, now, |b, t| b.on_rejected_by_limit(t));
                } else {
                    self.breaker_op(i, now, |b, t| b.on_failure(t));
                    self.handle.counters.error();
                    self.shared.transport_counters[self.routes[i].transport].error();
                }
                let wait = e
                    .limit_rejection()
                    .and_then(|r| r.retry_after)
                    .unwrap_or(Duration::ZERO)
                    .max(self.shared.config.health_interval);
                self.routes[i].next_attempt = now + wait.min(Duration::from_secs(3600));
                let msg = format!("{}: {e}", self.routes[i].addr);
                self.emit(CoordinatorEvent::Error {
                    peer: Some(self.peer),
                    error: format!("dial {msg}"),
                });
                if let Some((_, last)) = &mut self.pass {
                    *last = msg;
                }
                self.step_pass(now);
            }
        }
    }

    /// Adds a connection (dialed on route `route`, or accepted) and starts its reader.
    pub(super) fn attach(
        &mut self,
        conn: Connection,
        guard: AdmissionGuard,
        transport: usize,
        route: Option<usize>,
        listener: Option<u64>,
        now: Instant,
    ) {
        let id = self.shared.next_link_id();
        let remote = conn.remote_addr().clone();
        let route = route.or_else(|| self.routes.iter().position(|r| r.addr == remote));
        let (sender, receiver) = conn.split();
        let reader = Reader {
            link: id,
            receiver,
            ctl: self.ctl_tx.clone(),
            inbox: self.inbox_tx.clone(),
            handle: self.handle.clone(),
            transport_counters: self.shared.transport_counters[transport].clone(),
        };
        tokio::spawn(reader.run());
        self.shared.transport_counters[transport].connection_opened();
        self.links.push(Link {
            id,
            sender,
            route,
            listener,
            remote,
            transport,
            rtt: RttEstimator::new(self.shared.config.rtt),
            outstanding: None,
            next_ping: now + self.shared.config.health_interval,
            missed: 0,
            pongs_in_row: 0,
            pong_due: None,
            ping_due: false,
            _guard: guard,
        });
        self.grace = None;
        let take_over = match self.active_link() {
            None => true,
            // Follow the dialer: a newer inbound connection replaces an inbound active one.
            Some(active) => route.is_none() && active.route.is_none(),
        };
        if take_over {
            self.set_active(id);
        } else if route.is_some() {
            // A standby on a preferred route: probe it at once.
            if let Some(l) = self.links.last_mut() {
                l.next_ping = now;
            }
        }
        self.update_view();
    }

    fn active_link(&self) -> Option<&Link> {
        let id = self.active?;
        self.links.iter().find(|l| l.id == id)
    }

    /// Makes `id` the active link; everything unacknowledged is resent on it.
    fn set_active(&mut self, id: u64) {
        let from = self.active_link().map(|l| l.remote.clone());
        self.active = Some(id);
        let Some(to) = self.active_link().map(|l| l.remote.clone()) else {
            return;
        };
        self.pass = None;
        // Resend in id order, ahead of what was already waiting to be resent.
        let mut again: Vec<_> = std::mem::take(&mut self.unacked)
            .into_iter()
            .map(|(id, (p, b))| (id, p, b))
            .chain(self.resend.drain(..))
            .collect();
        again.sort_by_key(|(id, _, _)| *id);
        self.resend = again.into();
        if let Some(p) = self.current.take() {
            if let Some(d) = p.data {
                let pos = self.resend.partition_point(|(i, _, _)| *i < d.0);
                self.resend.insert(pos, d);
            }
        }
        if self.announced {
            if from.as_ref() != Some(&to) || from.is_none() {
                self.emit(CoordinatorEvent::RouteChanged {
                    peer: self.peer,
                    from,
                    to,
                });
            }
        } else {
            self.announced = true;
            self.emit(CoordinatorEvent::Connected {
                peer: self.peer,
                address: to,
            });
        }
        for w in self.connect_waiters.drain(..) {
            let _ = w.send(Ok(()));
        }
    }

    pub(super) fn on_link_ended(&mut self, id: u64, end: LinkEnd) {
        let Some(pos) = self.links.iter().position(|l| l.id == id) else {
            return;
        };
        let link = self.links.swap_remove(pos);
        let now = Instant::now();
        let reason = match end {
            LinkEnd::Closed(r) => DisconnectReason::ConnectionLost(r),
            LinkEnd::Protocol(p) => {
                self.handle.counters.error();
                self.emit(CoordinatorEvent::Error {
                    peer: Some(self.peer),
                    error: format!("protocol violation on {}: {p}", link.remote),
                });
                DisconnectReason::Protocol(p)
            }
        };
        self.lose(link, reason, now);
    }

    /// Removes `link` (already taken out of `links`) after a failure and fails over.
    fn lose(&mut self, link: Link, reason: DisconnectReason, now: Instant) {
        if let Some(i) = link.route {
            self.breaker_op(i, now, |b, t| b.on_failure(t));
            self.routes[i].next_attempt = now;
        }
        self.shared.transport_counters[link.transport].error();
        let was_active = self.active == Some(link.id);
        let route = link.route;
        link.close(&self.shared, &reason.to_string());
        if was_active {
            self.failover(route, reason, now);
        }
        self.update_view();
    }

    fn failover(&mut self, lost_route: Option<usize>, reason: DisconnectReason, now: Instant) {
        let routes = self.routes.len();
        let best = self
            .links
            .iter()
            .min_by_key(|l| (l.rank(routes), std::cmp::Reverse(l.id)))
            .map(|l| l.id);
        if let Some(id) = best {
            self.set_active(id);
        } else if !self.routes.is_empty() {
            self.active = None;
            self.start_pass(lost_route, reason.to_string(), now);
        } else {
            self.active = None;
            let c = &self.shared.config;
            self.grace = Some((now + c.dial_timeout + c.health_interval, reason));
        }
    }

    pub(super) fn on_listener_closed(&mut self, listener: u64, now: Instant) {
        while let Some(pos) = self.links.iter().position(|l| l.listener == Some(listener)) {
            let link = self.links.swap_remove(pos);
            let was_active = self.active == Some(link.id);
            link.close(&self.shared, "listener closed");
            if was_active {
                let reason = DisconnectReason::Local("listener closed".into());
                self.failover(None, reason, now);
            }
        }
        self.update_view();
    }

    pub(super) fn on_ping(&mut self, id: u64, nonce: u64) {
        let active = self.active;
        let Some(link) = self.links.iter_mut().find(|l| l.id == id) else {
            return;
        };
        if active == Some(id) {
            link.pong_due = Some(nonce);
        } else {
            let frame = self.enc.probe(TYPE_PONG, nonce);
            // A standby link's queue is empty in practice; if not, the PONG is dropped.
            let _ = link.sender.try_send(frame);
        }
    }

    pub(super) fn on_pong(&mut self, id: u64, nonce: u64, now: Instant) {
        let interval = self.shared.config.health_interval;
        let Some(link) = self.links.iter_mut().find(|l| l.id == id) else {
            return;
        };
        let Some((expected, sent, _)) = link.outstanding else {
            return;
        };
        if expected != nonce {
            return;
        }
        link.outstanding = None;
        link.rtt.on_sample(now.saturating_duration_since(sent));
        link.missed = 0;
        link.pongs_in_row = link.pongs_in_row.saturating_add(1);
        link.next_ping = sent + interval;
        let (route, pongs) = (link.route, link.pongs_in_row);
        if let Some(i) = route {
            self.breaker_op(i, now, |b, t| b.on_success(t));
        }
        self.maybe_switch_back(id, route, pongs);
    }

    /// Hysteresis: a standby on a more preferred route becomes active after enough PONGs.
    fn maybe_switch_back(&mut self, id: u64, route: Option<usize>, pongs: u32) {
        let Some(i) = route else { return };
        if self.active == Some(id) || pongs < self.shared.config.switch_back_after {
            return;
        }
        let routes = self.routes.len();
        let active_rank = self.active_link().map_or(usize::MAX, |l| l.rank(routes));
        if i >= active_rank {
            return;
        }
        let old = self.active;
        self.set_active(id);
        if let Some(old) = old {
            if let Some(pos) = self.links.iter().position(|l| l.id == old) {
                let link = self.links.swap_remove(pos);
                link.close(&self.shared, "switched to a preferred route");
            }
        }
        self.update_view();
    }

    /// The earliest time the actor must wake up.
    pub(super) fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut t = far;
        for l in &self.links {
            t = t.min(match l.outstanding {
                Some((_, _, deadline)) => deadline,
                None => l.next_ping,
            });
        }
        if let Some(rank) = self.standby_rank() {
            for r in self.routes.iter().take(rank) {
                if !r.dialing {
                    t = t.min(r.next_attempt);
                }
            }
        }
        if let Some((g, _)) = &self.grace {
            t = t.min(*g);
        }
        if let Some(idle) = self.shared.config.idle_timeout {
            t = t.min(self.idle.1 + idle);
        }
        t
    }

    /// Routes ranked before this are worth redialing (the active link is on a worse one).
    fn standby_rank(&self) -> Option<usize> {
        let routes = self.routes.len();
        let link = self.active_link()?;
        let rank = link.rank(routes);
        (rank > 0).then_some(rank.min(routes))
    }

    pub(super) fn on_timer(&mut self, now: Instant) {
        let c = &self.shared.config;
        let (max_missed, interval) = (c.max_missed_pings, c.health_interval);
        // Health checks.
        let mut dead = Vec::new();
        let active = self.active;
        for l in &mut self.links {
            if let Some((_, _, deadline)) = l.outstanding {
                if now >= deadline {
                    let timeout = l.rtt.rto();
                    l.outstanding = None;
                    l.rtt.on_timeout();
                    l.missed += 1;
                    l.pongs_in_row = 0;
                    if l.missed >= max_missed {
                        dead.push((l.id, l.missed, timeout));
                        continue;
                    }
                    l.next_ping = now;
                }
            }
            if l.outstanding.is_none() && now >= l.next_ping && !l.ping_due {
                l.next_ping = now + interval;
                if active == Some(l.id) {
                    l.ping_due = true;
                } else {
                    let nonce = self.nonce;
                    self.nonce += 1;
                    if let Ok(true) = l.sender.try_send(self.enc.probe(TYPE_PING, nonce)) {
                        l.ping_sent(nonce, now);
                    }
                }
            }
        }
        for (id, missed, timeout) in dead {
            if let Some(pos) = self.links.iter().position(|l| l.id == id) {
                let link = self.links.swap_remove(pos);
                self.handle.counters.error();
                self.lose(link, DisconnectReason::HealthCheck { missed, timeout }, now);
            }
        }
        // Dial more preferred routes while traffic uses a worse one.
        if let Some(rank) = self.standby_rank() {
            for i in 0..rank {
                let r = &self.routes[i];
                if r.dialing
                    || now < r.next_attempt
                    || self.links.iter().any(|l| l.route == Some(i))
                {
                    continue;
                }
                match self.admit(i, now) {
                    Ok(()) => self.dial(i),
                    Err(retry) => {
                        self.routes[i].next_attempt = now + retry.max(Duration::from_millis(1))
                    }
                }
                self.routes[i].next_attempt = self.routes[i].next_attempt.max(now + interval);
            }
        }
        if let Some((g, _)) = &self.grace {
            if now >= *g {
                if let Some((_, reason)) = self.grace.take() {
                    self.give_up(reason);
                }
            }
        }
        if let Some(idle) = self.shared.config.idle_timeout {
            use std::sync::atomic::Ordering::Relaxed;
            let traffic = self.handle.counters.delivered.load(Relaxed) + self.next_id;
            if traffic != self.idle.0 {
                self.idle = (traffic, now);
            } else if now >= self.idle.1 + idle {
                self.done = Some(DisconnectReason::Idle);
            }
        }
    }

    pub(super) fn update_view(&self) {
        self.handle.set_view(PeerConnections {
            peer: self.peer,
            active: self.active_link().map(|l| l.remote.clone()),
            connections: self.links.iter().map(|l| l.remote.clone()).collect(),
            routes: self.routes.iter().map(|r| r.addr.clone()).collect(),
        });
    }
}
