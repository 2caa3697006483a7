//! The actor's health checks and switch-back: a PING per connection every health interval,
//! answered within the connection's RTT-estimated timeout (RFC 6298, doubled per miss);
//! `max_missed_pings` misses in a row close the connection. A standby connection on a more
//! preferred route takes the traffic back after `switch_back_after` PONGs in a row
//! (hysteresis), and more preferred routes are redialed while traffic uses a worse one.

use std::time::Duration;

use tokio::time::Instant;

use super::actor::Actor;
use crate::envelope::{TYPE_PING, TYPE_PONG};
use crate::event::DisconnectReason;

impl Actor {
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
    pub(super) fn maybe_switch_back(&mut self, id: u64, route: Option<usize>, pongs: u32) {
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
            for (i, r) in self.routes.iter().enumerate().take(rank) {
                if !r.dialing && !self.links.iter().any(|l| l.route == Some(i)) {
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
    pub(super) fn standby_rank(&self) -> Option<usize> {
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
        let mut missed_on = Vec::new();
        let active = self.active;
        for l in &mut self.links {
            if let Some((_, _, deadline)) = l.outstanding {
                if now >= deadline {
                    let timeout = l.rtt.rto();
                    l.outstanding = None;
                    l.rtt.on_timeout();
                    l.missed += 1;
                    l.pongs_in_row = 0;
                    missed_on.extend(l.route);
                    if l.missed >= max_missed {
                        dead.push((l.id, l.missed, timeout));
                        continue;
                    }
                    l.next_ping = now;
                }
            }
            if l.outstanding.is_none() && now >= l.next_ping {
                l.next_ping = now + interval;
                let nonce = self.nonce;
                self.nonce += 1;
                if active == Some(l.id) {
                    // Written by the main path, ahead of data; the timeout starts now, so a
                    // connection too blocked to carry it fails the check too.
                    l.ping_due = Some(nonce);
                    l.ping_sent(nonce, now);
                } else {
                    l.ping_due = None;
                    // A standby link's queue is empty in practice; if it is full, the PING is
                    // skipped this round.
                    if let Ok(true) = l.sender.try_send(self.enc.probe(TYPE_PING, nonce)) {
                        l.ping_sent(nonce, now);
                    }
                }
            }
        }
        for i in missed_on {
            self.breaker_op(i, now, |b, t| b.on_failure(t));
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
}
