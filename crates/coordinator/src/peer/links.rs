//! The actor's routes and connections: attaching connections, failover, switch-back with
//! hysteresis, health checks, circuit breakers and the reconnect grace.
//!
//! Route selection (see docs/coordinator.md for the diagram):
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

use bitcraps_transport_core::{AdmissionGuard, Connection, ConnectionSender, TransportAddress};
use tokio::time::Instant;

use super::actor::Actor;
use super::reader::Reader;
use super::LinkEnd;
use crate::event::{CoordinatorEvent, DisconnectReason};
use crate::policy::{BreakerState, CircuitBreaker, RttEstimator};
use crate::stats::PeerConnections;
use crate::Shared;

pub(super) fn std_now(now: Instant) -> std::time::Instant {
    now.into_std()
}

/// One route: a transport address of the peer, with its breaker.
pub(super) struct Route {
    pub(super) addr: TransportAddress,
    pub(super) transport: usize,
    pub(super) breaker: CircuitBreaker,
    /// The state last reported in a `Breaker` event.
    pub(super) reported: BreakerState,
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
    /// A PING for the main path to write (active link); its timeout already runs.
    pub(super) ping_due: Option<u64>,
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
    pub(super) fn rank(&self, routes: usize) -> usize {
        self.route.unwrap_or(routes)
    }
}

impl Actor {
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
            // The first health check goes out at once: it proves the route and gives the
            // RTT estimator its first sample.
            next_ping: now,
            missed: 0,
            pongs_in_row: 0,
            pong_due: None,
            ping_due: None,
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
        }
        self.update_view();
    }

    pub(super) fn active_link(&self) -> Option<&Link> {
        let id = self.active?;
        self.links.iter().find(|l| l.id == id)
    }

    /// Makes `id` the active link; everything unacknowledged is resent on it.
    pub(super) fn set_active(&mut self, id: u64) {
        self.active = Some(id);
        let Some(to) = self.active_link().map(|l| l.remote.clone()) else {
            return;
        };
        let from = self.last_route.replace(to.clone());
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
        self.update_view();
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
    pub(super) fn lose(&mut self, link: Link, reason: DisconnectReason, now: Instant) {
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

    pub(super) fn failover(
        &mut self,
        lost_route: Option<usize>,
        reason: DisconnectReason,
        now: Instant,
    ) {
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

    pub(super) fn update_view(&self) {
        self.handle.set_view(PeerConnections {
            peer: self.peer,
            active: self.active_link().map(|l| l.remote.clone()),
            connections: self.links.iter().map(|l| l.remote.clone()).collect(),
            routes: self.routes.iter().map(|r| r.addr.clone()).collect(),
        });
    }
}
