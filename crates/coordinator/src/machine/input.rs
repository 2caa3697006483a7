//! The state machine's inputs from the network side: routes to connect over, dial results,
//! attached connections, transport messages received, lost connections, and backpressure.

use std::time::{Duration, Instant};

use bitcraps_transport_core::{Error as CoreError, TransportAddress};
use bytes::Bytes;

use super::inbox::Arrival;
use super::links::Link;
use super::outbox::Window;
use super::types::{
    Action, DialId, DisconnectReason, LinkFailure, LinkId, LinkInfo, Notice, RouteError,
};
use super::{PeerMachine, Phase};
use crate::envelope::{
    CloseCode, Envelope, EnvelopeError, Envelopes, Hello, FLAG_NEED_HELLO, FLAG_RESUMED,
};
use crate::policy::{BreakerState, CircuitBreaker};

impl PeerMachine {
    /// Sets the peer's routes (most preferred first, each with its breaker and the breaker
    /// state last reported) and, unless a connection is active, starts a connect pass.
    pub fn connect(
        &mut self,
        routes: Vec<(TransportAddress, CircuitBreaker, BreakerState)>,
        now: Instant,
    ) {
        if self.phase != Phase::Running {
            return;
        }
        self.routes.set(routes, now);
        for link in self.links.iter_mut() {
            link.route = self.routes.position(&link.info.remote);
        }
        for i in 0..self.routes.len() {
            if let Some(id) = self.links.iter().find(|l| l.route == Some(i)).map(|l| l.id) {
                self.routes.dial_done(i, Some(id));
            }
        }
        if self.active.is_none() && !self.routes.is_empty() {
            self.routes.start_pass(None, now);
            self.step_pass(now);
        }
    }

    /// A dial asked for by [`Action::Dial`] produced an authenticated connection.
    pub fn dial_succeeded(&mut self, dial: DialId, link: LinkId, info: LinkInfo, now: Instant) {
        let route = self.routes.route_of(dial);
        if self.phase != Phase::Running || route.is_none() {
            self.actions.push_back(Action::Close {
                link,
                farewell: Vec::new(),
                reason: "not needed",
            });
            return;
        }
        if let Some(i) = route {
            self.routes.dial_done(i, Some(link));
        }
        self.add_link(link, info, route, true, now);
    }

    /// A dial failed with the transport's typed error.
    pub fn dial_failed(&mut self, dial: DialId, error: CoreError, now: Instant) {
        let Some(i) = self.routes.route_of(dial) else {
            return;
        };
        let floor = self.config.health_interval;
        self.routes
            .dial_failed(i, &error, floor, now, &mut self.actions);
        if let Some(route) = self.routes.get(i) {
            self.actions.push_back(Action::Notify(Notice::DialFailed {
                route: route.addr.clone(),
                error: error.clone(),
            }));
        }
        self.routes.pass_failure(i, RouteError::Dial(error));
        self.step_pass(now);
    }

    /// A connection the shell accepted (or the application attached) for this peer.
    pub fn attach(&mut self, link: LinkId, info: LinkInfo, now: Instant) {
        if self.phase != Phase::Running {
            self.actions.push_back(Action::Close {
                link,
                farewell: Vec::new(),
                reason: "session ended",
            });
            return;
        }
        let route = self.routes.position(&info.remote);
        if let Some(i) = route {
            if self
                .routes
                .get(i)
                .is_some_and(|r| r.state == super::routes::RouteState::Idle)
            {
                self.routes.dial_done(i, Some(link));
            }
        }
        self.add_link(link, info, route, false, now);
    }

    /// Sets the shell's probe floor for a connection (slow radios).
    pub fn set_min_probe(&mut self, link: LinkId, floor: Duration) {
        if let Some(l) = self.links.get_mut(link) {
            l.min_probe = floor;
        }
    }

    fn add_link(
        &mut self,
        id: LinkId,
        info: LinkInfo,
        route: Option<usize>,
        dialed: bool,
        now: Instant,
    ) {
        let seq = self.links.next_seq();
        let resumed = self.out.resumed();
        let link = Link::new(id, info, route, seq, self.config.rtt, resumed, now);
        self.links.insert(link);
        self.grace_until = None;
        let routes = self.routes_len();
        let rank = |r: Option<usize>| r.unwrap_or(routes);
        match self
            .active
            .and_then(|a| self.links.get(a))
            .map(|l| (l.id, l.route))
        {
            None => self.activate(id, now),
            // Follow a dialer: a newer connection on no route replaces one on no route.
            Some((_, None)) if route.is_none() => self.activate(id, now),
            // During a connect pass, a more preferred route wins at once.
            Some((old, r)) if self.routes.pass_active() && rank(route) < rank(r) => {
                self.activate(id, now);
                self.close_link(old, None, "a preferred route connected");
            }
            // A dial that brought nothing better than what carries the traffic.
            Some((_, r)) if dialed && rank(route) >= rank(r) => {
                self.close_link(id, None, "a preferred route is active");
            }
            // Otherwise a better route is a standby until it proves itself (switch-back).
            _ => {}
        }
        self.step_pass(now);
    }

    /// A connection ended (closed, failed, or sending on it failed).
    pub fn link_lost(&mut self, link: LinkId, failure: LinkFailure, now: Instant) {
        self.fail_link(link, failure, now);
    }

    /// The shell could not hand a transport message to `link` (its queue is full) or can
    /// again: no new transport message is produced for a blocked connection.
    pub fn set_blocked(&mut self, link: LinkId, blocked: bool) {
        if let Some(l) = self.links.get_mut(link) {
            l.blocked = blocked;
        }
    }

    /// A transport message arrived on `link`.
    pub fn received(&mut self, link: LinkId, frame: Bytes, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        let Some(l) = self.links.get_mut(link) else {
            return;
        };
        if let Some((lane, seq, len)) = l.expect_payload.take() {
            if frame.len() != len as usize {
                let e = EnvelopeError::PayloadLength {
                    expected: len,
                    actual: frame.len(),
                };
                return self.protocol_error(e, now);
            }
            return self.on_data(lane, seq, frame, now);
        }
        for env in Envelopes::new(frame) {
            if self.phase != Phase::Running || self.links.get(link).is_none() {
                return;
            }
            let env = match env {
                Ok(env) => env,
                Err(e) => return self.protocol_error(e, now),
            };
            let hello_received = self.links.get(link).is_some_and(|l| l.hello_received);
            if !hello_received && !matches!(env, Envelope::Hello(_)) {
                let reliable = self.links.get(link).is_some_and(|l| l.info.reliable);
                if reliable {
                    return self.protocol_error(EnvelopeError::Invalid("no HELLO first"), now);
                }
                // A lost HELLO on a lossy connection: ask for it again, drop the rest.
                if let Some(l) = self.links.get_mut(link) {
                    l.hello_due = true;
                }
                return;
            }
            match env {
                Envelope::Hello(h) => self.on_hello(link, h, now),
                Envelope::Data { lane, seq, payload } => self.on_data(lane, seq, payload, now),
                Envelope::DataNext { lane, seq, len } => {
                    if len as usize > self.config.max_payload {
                        return self
                            .protocol_error(EnvelopeError::Invalid("DATA_NEXT too large"), now);
                    }
                    if let Some(l) = self.links.get_mut(link) {
                        l.expect_payload = Some((lane, seq, len));
                    }
                }
                Envelope::Ack { lane, state } => {
                    match self.out.on_state(lane, state, false, &mut self.actions) {
                        Ok(true) => self.progress_at = now,
                        Ok(false) => {}
                        Err(e) => return self.protocol_error(e, now),
                    }
                }
                Envelope::Ping(nonce) => {
                    if let Some(l) = self.links.get_mut(link) {
                        l.owe_pong(nonce);
                    }
                }
                Envelope::Pong(nonce) => self.on_pong(link, nonce, now),
                Envelope::Close(code) => {
                    let reason = match code {
                        CloseCode::SessionUnknown => DisconnectReason::SessionLost,
                        code => DisconnectReason::RemoteClosed(code),
                    };
                    return self.end(reason, now);
                }
            }
        }
    }

    fn protocol_error(&mut self, e: EnvelopeError, now: Instant) {
        self.end(DisconnectReason::Protocol(e), now);
    }

    fn on_data(&mut self, lane: u8, seq: u64, payload: Bytes, now: Instant) {
        if self.inbox.session().is_none() {
            return; // from a resumed session we do not know: it is being closed
        }
        if self.inbox.arrive(lane, seq, payload) == Arrival::OverWindow {
            return self.end(DisconnectReason::FlowControl, now);
        }
        self.inbox.touch(now);
    }

    fn on_hello(&mut self, link: LinkId, h: Hello, now: Instant) {
        let Some(l) = self.links.get_mut(link) else {
            return;
        };
        l.hello_received = true;
        if h.flags & FLAG_NEED_HELLO != 0 {
            l.hello_due = true;
        }
        let resumed_at_open = l.resumed_at_open;
        self.out.set_window(Window {
            messages: u64::from(h.window_messages.max(1)),
            bytes: u64::from(h.window_bytes.max(1)),
        });
        // The remote's session, as seen by our receive side.
        if self.inbox.session() != Some(h.session) {
            let known = self.tombstone.is_some_and(|t| t.session == h.session);
            if h.flags & FLAG_RESUMED != 0 && !known {
                // A resumed session we hold no state of: refuse it (it would risk duplicates).
                if let Some(l) = self.links.get_mut(link) {
                    l.close_due = Some(CloseCode::SessionUnknown);
                }
            } else {
                // A new session starts afresh; a resumed one continues from the kept state.
                let resumed = h.flags & FLAG_RESUMED != 0;
                self.inbox
                    .adopt(h.session, self.tombstone.filter(|_| resumed));
            }
        }
        // Our session, as seen by the remote.
        if h.your_session == self.session {
            for (lane, state) in h.lanes.iter().enumerate() {
                match self
                    .out
                    .on_state(lane as u8, *state, true, &mut self.actions)
                {
                    Ok(true) => self.progress_at = now,
                    Ok(false) => {}
                    Err(e) => return self.protocol_error(e, now),
                }
            }
        } else if h.your_session != 0 && resumed_at_open {
            self.end(DisconnectReason::SessionLost, now);
        }
    }
}
