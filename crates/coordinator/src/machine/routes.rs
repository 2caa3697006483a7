//! The routes of one peer (its addresses in preference order), each with a circuit breaker,
//! and the connect pass: staggered parallel dials (happy eyeballs) in preference order,
//! skipping routes whose breaker refuses, until one connects or all have failed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bitcraps_transport_core::{Error as CoreError, TransportAddress};

use super::types::{Action, DialId, LinkId, Notice, RouteError, RouteFailure};
use crate::policy::{Admission, BreakerState, CircuitBreaker};

/// What a route is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteState {
    /// Nothing.
    Idle,
    /// A dial is in flight.
    Dialing(DialId),
    /// A connection on it is open.
    Up(LinkId),
}

/// One route.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) addr: TransportAddress,
    pub(crate) breaker: CircuitBreaker,
    reported: BreakerState,
    pub(crate) state: RouteState,
    /// Not redialed for switch-back before this.
    pub(crate) next_attempt: Instant,
}

/// A connect pass in progress.
#[derive(Debug)]
pub(crate) struct Pass {
    order: VecDeque<usize>,
    next_start: Instant,
    failures: Vec<RouteFailure>,
}

/// The routes and the pass.
#[derive(Debug)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
    pass: Option<Pass>,
    next_dial: u64,
    stagger: Duration,
}

impl RouteTable {
    pub(crate) fn new(stagger: Duration) -> Self {
        Self {
            routes: Vec::new(),
            pass: None,
            next_dial: 0,
            stagger,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Route> {
        self.routes.get(i)
    }

    pub(crate) fn addrs(&self) -> Vec<TransportAddress> {
        self.routes.iter().map(|r| r.addr.clone()).collect()
    }

    pub(crate) fn position(&self, addr: &TransportAddress) -> Option<usize> {
        self.routes.iter().position(|r| &r.addr == addr)
    }

    /// Replaces the routes; routes kept keep their breaker and state; `breaker` makes the
    /// breaker of a new one. Returns the old index -> new index map's inverse lookups through
    /// `position`.
    pub(crate) fn set(
        &mut self,
        addrs: Vec<(TransportAddress, CircuitBreaker, BreakerState)>,
        now: Instant,
    ) -> Vec<Route> {
        let mut old: Vec<Route> = std::mem::take(&mut self.routes);
        let _ = now;
        for (addr, breaker, reported) in addrs {
            let route = match old.iter().position(|r| r.addr == addr) {
                Some(i) => old.swap_remove(i),
                None => Route {
                    addr,
                    // A breaker kept from an earlier session, with the state reported then.
                    reported,
                    breaker,
                    state: RouteState::Idle,
                    next_attempt: now,
                },
            };
            self.routes.push(route);
        }
        self.pass = None;
        old
    }

    /// Every route's breaker, to keep beyond this session.
    pub(crate) fn breakers(&self) -> Vec<(TransportAddress, CircuitBreaker, BreakerState)> {
        self.routes
            .iter()
            .map(|r| (r.addr.clone(), r.breaker.clone(), r.reported))
            .collect()
    }

    pub(crate) fn pass_active(&self) -> bool {
        self.pass.is_some()
    }

    /// Runs `f` on route `i`'s breaker and reports a state change.
    pub(crate) fn breaker_op<R>(
        &mut self,
        i: usize,
        now: Instant,
        out: &mut VecDeque<Action>,
        f: impl FnOnce(&mut CircuitBreaker, Instant) -> R,
    ) -> Option<R> {
        let route = self.routes.get_mut(i)?;
        let r = f(&mut route.breaker, now);
        let state = route.breaker.state(now);
        if std::mem::discriminant(&state) != std::mem::discriminant(&route.reported) {
            route.reported = state;
            out.push_back(Action::Notify(Notice::Breaker {
                route: route.addr.clone(),
                state,
            }));
        }
        Some(r)
    }

    /// Dials route `i` if its breaker admits it; `Err(retry_after)` if not.
    pub(crate) fn try_dial(
        &mut self,
        i: usize,
        now: Instant,
        out: &mut VecDeque<Action>,
    ) -> Result<(), Duration> {
        match self.breaker_op(i, now, out, |b, t| b.admit(t)) {
            Some(Admission::Allowed | Admission::Probe) => {}
            Some(Admission::Rejected { retry_after }) => return Err(retry_after),
            None => return Err(Duration::MAX),
        }
        self.next_dial += 1;
        let dial = DialId(self.next_dial);
        let route = &mut self.routes[i];
        route.state = RouteState::Dialing(dial);
        out.push_back(Action::Dial {
            dial,
            route: i,
            address: route.addr.clone(),
        });
        Ok(())
    }

    /// The route a dial was for.
    pub(crate) fn route_of(&self, dial: DialId) -> Option<usize> {
        self.routes
            .iter()
            .position(|r| r.state == RouteState::Dialing(dial))
    }

    /// Starts a pass over every route in preference order, `last` (a route just lost) last.
    pub(crate) fn start_pass(&mut self, last: Option<usize>, now: Instant) {
        let mut order: VecDeque<usize> = (0..self.routes.len())
            .filter(|&i| Some(i) != last)
            .collect();
        order.extend(last);
        self.pass = Some(Pass {
            order,
            next_start: now,
            failures: Vec::new(),
        });
    }

    pub(crate) fn end_pass(&mut self) {
        self.pass = None;
    }

    /// Records a failure in the pass (if one runs).
    pub(crate) fn pass_failure(&mut self, i: usize, error: RouteError) {
        let Some(route) = self.routes.get(i) else {
            return;
        };
        let failure = RouteFailure {
            route: route.addr.clone(),
            error,
        };
        if let Some(p) = &mut self.pass {
            p.failures.push(failure);
        }
    }

    /// Advances the pass: starts the next dial when the stagger delay has passed or nothing
    /// is in flight. `Some(failures)` when the pass is over with nothing connected.
    pub(crate) fn step_pass(
        &mut self,
        now: Instant,
        out: &mut VecDeque<Action>,
    ) -> Option<Vec<RouteFailure>> {
        loop {
            let in_flight = self
                .routes
                .iter()
                .any(|r| matches!(r.state, RouteState::Dialing(_)));
            let pass = self.pass.as_mut()?;
            if in_flight && now < pass.next_start {
                return None;
            }
            let Some(i) = pass.order.pop_front() else {
                if in_flight {
                    return None;
                }
                return self.pass.take().map(|p| p.failures);
            };
            if self.routes[i].state != RouteState::Idle {
                continue;
            }
            match self.try_dial(i, now, out) {
                Ok(()) => {
                    if let Some(p) = &mut self.pass {
                        p.next_start = now + self.stagger;
                    }
                    return None;
                }
                Err(retry_after) => self.pass_failure(i, RouteError::BreakerOpen { retry_after }),
            }
        }
    }

    /// True if a route better than `rank` has a dial in flight.
    pub(crate) fn dialing_better_than(&self, rank: usize) -> bool {
        self.routes
            .iter()
            .take(rank)
            .any(|r| matches!(r.state, RouteState::Dialing(_)))
    }

    /// When the pass next wants to start a dial.
    pub(crate) fn pass_deadline(&self) -> Option<Instant> {
        let p = self.pass.as_ref()?;
        (!p.order.is_empty()).then_some(p.next_start)
    }

    /// A dial ended: the route goes back to idle, or up.
    pub(crate) fn dial_done(&mut self, i: usize, link: Option<LinkId>) {
        if let Some(r) = self.routes.get_mut(i) {
            r.state = link.map_or(RouteState::Idle, RouteState::Up);
        }
    }

    /// A connection on route `i` went away.
    pub(crate) fn link_gone(&mut self, i: usize, link: LinkId) {
        if let Some(r) = self.routes.get_mut(i) {
            if r.state == RouteState::Up(link) {
                r.state = RouteState::Idle;
            }
        }
    }

    /// A failed dial: counts in the breaker unless a limit refused it.
    pub(crate) fn dial_failed(
        &mut self,
        i: usize,
        error: &CoreError,
        retry_floor: Duration,
        now: Instant,
        out: &mut VecDeque<Action>,
    ) {
        self.dial_done(i, None);
        let limit = error.limit_rejection();
        if limit.is_some() {
            self.breaker_op(i, now, out, |b, t| b.on_rejected_by_limit(t));
        } else {
            self.breaker_op(i, now, out, |b, t| b.on_failure(t));
        }
        let wait = limit
            .and_then(|r| r.retry_after)
            .unwrap_or(Duration::ZERO)
            .max(retry_floor)
            .min(Duration::from_secs(3600));
        if let Some(r) = self.routes.get_mut(i) {
            r.next_attempt = now + wait;
        }
    }

    /// Routes better than `rank` that are idle: candidates for a switch-back dial.
    pub(crate) fn better_idle(&self, rank: usize) -> impl Iterator<Item = usize> + '_ {
        self.routes
            .iter()
            .enumerate()
            .take(rank)
            .filter(|(_, r)| r.state == RouteState::Idle)
            .map(|(i, _)| i)
    }

    pub(crate) fn set_next_attempt(&mut self, i: usize, at: Instant) {
        if let Some(r) = self.routes.get_mut(i) {
            r.next_attempt = at;
        }
    }
}
