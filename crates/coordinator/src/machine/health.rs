//! Timers and route selection: health probes on idle connections, dark-route detection and
//! retransmission while data is outstanding, failover and switch-back with hysteresis, the
//! connect pass, the grace period of a peer with no route, and the idle timeout.
//!
//! - The active connection carries traffic. When it fails, the best other connection takes
//!   over (route preference, then newest); with none, a connect pass dials the routes (the lost
//!   one last); a peer with no routes waits `grace` for its dialer to come back.
//! - While data is outstanding on the active connection and nothing came back for one probe
//!   timeout (the RTT estimator's RTO, floored), a probe goes out at once; on a connection
//!   that promises delivery, a missed probe moves the traffic. On one that does not (UDP),
//!   everything the remote does not hold is also written again.
//! - Idle connections are probed every `health_interval`; `max_missed_pings` misses in a row
//!   give the connection up.
//! - While traffic uses a worse route, better routes are redialed (each at most once per
//!   health interval, as their breakers allow); a connection on one becomes active after
//!   `switch_back_after` answered probes in a row.

use std::time::Instant;

use super::links::{Link, ProbeCheck, ProbeKind};
use super::types::{Action, DisconnectReason, LinkFailure, LinkId, Notice};
use super::{PeerMachine, Phase};

impl PeerMachine {
    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Running {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        for l in self.links.iter() {
            at(l.deadline());
        }
        if let Some(active) = self.active.and_then(|a| self.links.get(a)) {
            if self.out.awaiting_receipt() && active.probe.is_none() {
                at(self.progress_at + active.probe_timeout());
            }
        }
        if let Some(d) = self.routes.pass_deadline() {
            at(d);
        }
        if let Some(rank) = self.standby_rank() {
            for i in self.routes.better_idle(rank) {
                if let Some(r) = self.routes.get(i) {
                    at(r.next_attempt);
                }
            }
        }
        if let Some((g, _)) = &self.grace_until {
            at(*g);
        }
        if let Some(idle) = self.config.idle_timeout {
            at(self.last_traffic + idle);
        }
        if let Some(r) = self.inbox.next_release() {
            at(r);
        }
        // A due acknowledgement matters only while a connection can carry it (else the timer
        // would fire again and again).
        let carrier = self.ack_link().and_then(|id| self.links.get(id));
        if carrier.is_some_and(|l| !l.blocked) {
            if let Some(a) = self.inbox.ack_due(self.config.ack_delay) {
                at(a);
            }
        }
        t
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        self.inbox.expire_block(now);
        self.check_probes(now);
        self.check_dark(now);
        self.step_pass(now);
        self.switch_back_dials(now);
        if let Some((g, _)) = &self.grace_until {
            if now >= *g {
                if let Some((_, failure)) = self.grace_until.take() {
                    return self.end(DisconnectReason::ConnectionLost(failure), now);
                }
            }
        }
        if let Some(idle) = self.config.idle_timeout {
            if now >= self.last_traffic + idle {
                self.end(DisconnectReason::Idle, now);
            }
        }
    }

    fn check_probes(&mut self, now: Instant) {
        let (max_missed, interval) = (self.config.max_missed_pings, self.config.health_interval);
        let mut dead = Vec::new();
        let mut missed_routes = Vec::new();
        let mut nonces = Vec::new();
        // While data is outstanding, a probe on the active connection decides the route as a
        // dark probe does (one miss on a connection that promises delivery).
        let dark_link = self.active.filter(|_| self.out.awaiting_receipt());
        for l in self.links.iter_mut() {
            if Some(l.id) == dark_link {
                if let Some(p) = l.probe.as_mut() {
                    p.kind = ProbeKind::Dark;
                }
            }
            match l.check_probe(max_missed, now) {
                ProbeCheck::Fine => {}
                ProbeCheck::Missed => missed_routes.extend(l.route),
                ProbeCheck::Dead(timeout, missed) => {
                    missed_routes.extend(l.route);
                    dead.push((l.id, Link::unresponsive(timeout, missed)));
                    continue;
                }
            }
            if l.probe.is_none() && now >= l.next_ping {
                l.next_ping = now + interval;
                nonces.push(l.id);
            }
        }
        for id in nonces {
            let nonce = self.next_nonce();
            if let Some(l) = self.links.get_mut(id) {
                l.start_probe(nonce, ProbeKind::Health, now);
            }
        }
        for i in missed_routes {
            self.routes
                .breaker_op(i, now, &mut self.actions, |b, t| b.on_failure(t));
        }
        for (id, failure) in dead {
            self.fail_link(id, failure, now);
        }
    }

    /// Data outstanding with no progress for a probe timeout: probe now; resend on a lossy
    /// connection.
    fn check_dark(&mut self, now: Instant) {
        let Some(id) = self.active else { return };
        if !self.out.awaiting_receipt() {
            return;
        }
        let Some(l) = self.links.get(id) else { return };
        let timeout = l.probe_timeout();
        if now < self.progress_at + timeout {
            return;
        }
        let (reliable, probing) = (l.info.reliable, l.probe.is_some());
        if !reliable {
            self.out.rewind();
            self.progress_at = now;
        }
        if probing {
            // A health probe already in flight now decides the route as a dark probe does.
            if let Some(p) = self.links.get_mut(id).and_then(|l| l.probe.as_mut()) {
                p.kind = ProbeKind::Dark;
            }
        } else {
            let nonce = self.next_nonce();
            if let Some(l) = self.links.get_mut(id) {
                l.start_probe(nonce, ProbeKind::Dark, now);
            }
        }
    }

    /// Advances the connect pass; a pass that connected nothing ends the session.
    pub(super) fn step_pass(&mut self, now: Instant) {
        if !self.routes.pass_active() {
            return;
        }
        if let Some(active) = self.active.and_then(|a| self.links.get(a)) {
            // Connected: wait only for dials of better routes already in flight.
            let rank = active.route.unwrap_or(self.routes_len());
            if !self.routes.dialing_better_than(rank) {
                self.routes.end_pass();
            }
            return;
        }
        if let Some(failures) = self.routes.step_pass(now, &mut self.actions) {
            if self.active.is_none() {
                self.end(DisconnectReason::AllRoutesFailed { failures }, now);
            }
        }
    }

    /// The route rank of the active connection if better routes exist.
    pub(super) fn standby_rank(&self) -> Option<usize> {
        let routes = self.routes_len();
        if routes == 0 || self.routes.pass_active() {
            return None;
        }
        let rank = self
            .active
            .and_then(|a| self.links.get(a))?
            .route
            .unwrap_or(routes);
        (rank > 0).then_some(rank)
    }

    fn switch_back_dials(&mut self, now: Instant) {
        let Some(rank) = self.standby_rank() else {
            return;
        };
        let interval = self.config.health_interval;
        let due: Vec<usize> = self
            .routes
            .better_idle(rank)
            .filter(|&i| self.routes.get(i).is_some_and(|r| now >= r.next_attempt))
            .collect();
        for i in due {
            let next = match self.routes.try_dial(i, now, &mut self.actions) {
                Ok(()) => now + interval,
                Err(retry) => now + retry.max(interval).min(interval * 12),
            };
            self.routes.set_next_attempt(i, next);
        }
    }

    pub(super) fn on_pong(&mut self, link: LinkId, nonce: u64, now: Instant) {
        let interval = self.config.health_interval;
        let Some(l) = self.links.get_mut(link) else {
            return;
        };
        if !l.on_pong(nonce, interval, now) {
            return;
        }
        let (route, pongs) = (l.route, l.pongs_in_row);
        if self.active == Some(link) {
            self.progress_at = now;
        }
        if let Some(i) = route {
            self.routes
                .breaker_op(i, now, &mut self.actions, |b, t| b.on_success(t));
        }
        // Hysteresis: a standby on a better route takes over after enough answers.
        let Some(i) = route else { return };
        if self.active == Some(link) || pongs < self.config.switch_back_after {
            return;
        }
        let routes = self.routes_len();
        let active_rank = self
            .active
            .and_then(|a| self.links.get(a))
            .map_or(usize::MAX, |l| l.route.unwrap_or(routes));
        if i < active_rank {
            let old = self.active;
            self.activate(link, now);
            if let Some(old) = old {
                self.close_link(old, None, "switched to a preferred route");
            }
        }
    }

    /// Makes `id` the active connection; what the remote does not hold is written again on it.
    pub(super) fn activate(&mut self, id: LinkId, now: Instant) {
        let Some(to) = self.links.get(id).map(|l| l.info.remote.clone()) else {
            return;
        };
        self.active = Some(id);
        self.out.rewind();
        self.progress_at = now;
        self.inbox.mark_dirty(0);
        self.inbox.mark_dirty(1);
        self.inbox.touch(now);
        let from = self.last_route.replace(to.clone());
        if !self.announced {
            self.announced = true;
            self.actions
                .push_back(Action::Notify(Notice::Connected { address: to }));
        } else if from.as_ref() != Some(&to) {
            self.actions
                .push_back(Action::Notify(Notice::RouteChanged { from, to }));
        }
    }

    /// Gives a connection up and fails over if it carried the traffic.
    pub(super) fn fail_link(&mut self, id: LinkId, failure: LinkFailure, now: Instant) {
        let Some(link) = self.links.get(id) else {
            return;
        };
        let (route, address) = (link.route, link.info.remote.clone());
        if let Some(i) = route {
            self.routes
                .breaker_op(i, now, &mut self.actions, |b, t| b.on_failure(t));
            self.routes.set_next_attempt(i, now);
        }
        self.close_link(id, None, "connection given up");
        self.actions.push_back(Action::Notify(Notice::LinkFailed {
            address,
            failure: failure.clone(),
        }));
        if self.active != Some(id) {
            return;
        }
        self.active = None;
        let routes = self.routes_len();
        if let Some(best) = self.links.best(routes, None) {
            self.activate(best, now);
        } else if routes > 0 {
            self.routes.start_pass(route, now);
            self.step_pass(now);
        } else {
            self.grace_until = Some((now + self.config.grace, failure));
        }
    }
}
