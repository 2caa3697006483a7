//! The actor's routes: connecting, failover passes over the routes in preference order,
//! dials, and the circuit breaker of each route (dial failures, send failures and health
//! check timeouts count; limit rejections do not).

use std::collections::VecDeque;
use std::time::Duration;

use bitcraps_transport_core::{AdmissionGuard, Connection, Error as CoreError, TransportAddress};
use tokio::time::Instant;

use super::actor::Actor;
use super::links::{std_now, Route};
use super::Ctl;
use crate::error::{CoordinatorError, Result};
use crate::event::{CoordinatorEvent, DisconnectReason};
use crate::policy::{Admission, CircuitBreaker};

/// A failover pass: routes left to try, why the pass started, and the last failure.
pub(super) struct Pass {
    order: VecDeque<usize>,
    cause: String,
    last: Option<String>,
}

impl Pass {
    /// The reason given when the pass connects nothing.
    fn failure(self) -> String {
        match (self.last, self.cause.is_empty()) {
            (Some(last), true) => last,
            (Some(last), false) => format!("{last} (after: {})", self.cause),
            (None, _) => self.cause,
        }
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
                None => {
                    let (breaker, reported) = self.shared.take_breaker(&addr);
                    Route {
                        breaker,
                        reported,
                        addr,
                        transport,
                        dialing: false,
                        next_attempt: now,
                    }
                }
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
            self.start_pass(None, String::new(), now);
        }
    }

    /// Starts a failover pass over every route, `lost` last.
    pub(super) fn start_pass(&mut self, lost: Option<usize>, why: String, now: Instant) {
        let mut order: VecDeque<usize> = (0..self.routes.len())
            .filter(|&i| Some(i) != lost)
            .collect();
        if let Some(l) = lost {
            order.push_back(l);
        }
        self.pass = Some(Pass {
            order,
            cause: why,
            last: None,
        });
        self.step_pass(now);
    }

    /// Dials the next admitted route of the pass, or gives up when none is left.
    pub(super) fn step_pass(&mut self, now: Instant) {
        loop {
            let Some(pass) = &mut self.pass else {
                return;
            };
            if self.routes.iter().any(|r| r.dialing) {
                return;
            }
            let Some(i) = pass.order.pop_front() else {
                if let Some(pass) = self.pass.take() {
                    let last = pass.failure();
                    self.give_up(DisconnectReason::AllRoutesFailed { last });
                }
                return;
            };
            match self.admit(i, now) {
                Ok(()) => {
                    self.dial(i);
                    return;
                }
                Err(retry) => {
                    if let Some(pass) = &mut self.pass {
                        pass.last = Some(format!(
                            "{}: circuit breaker open (retry in {retry:?})",
                            self.routes[i].addr
                        ));
                    }
                }
            }
        }
    }

    pub(super) fn give_up(&mut self, reason: DisconnectReason) {
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
    pub(super) fn admit(&mut self, i: usize, now: Instant) -> std::result::Result<(), Duration> {
        let answer = self.breaker_op(i, now, |b, t| b.admit(t));
        match answer {
            Admission::Allowed | Admission::Probe => Ok(()),
            Admission::Rejected { retry_after } => Err(retry_after),
        }
    }

    pub(super) fn breaker_op<R>(
        &mut self,
        i: usize,
        now: Instant,
        f: impl FnOnce(&mut CircuitBreaker, std::time::Instant) -> R,
    ) -> R {
        let t = std_now(now);
        let route = &mut self.routes[i];
        let r = f(&mut route.breaker, t);
        let state = route.breaker.state(t);
        if std::mem::discriminant(&state) != std::mem::discriminant(&route.reported) {
            route.reported = state;
            let route = route.addr.clone();
            self.emit(CoordinatorEvent::Breaker {
                peer: self.peer,
                route,
                state,
            });
        }
        r
    }

    pub(super) fn dial(&mut self, i: usize) {
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
                // Not a success yet: the route counts as working once the connection answers
                // its first health check (sent at once), so a peer that completes handshakes
                // but never answers still opens the breaker.
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
                if let Some(pass) = &mut self.pass {
                    pass.last = Some(msg);
                }
                self.step_pass(now);
            }
        }
    }
}
