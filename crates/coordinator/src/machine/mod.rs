//! The peer state machine: everything the coordinator decides about one peer, with no tokio,
//! no locks and no clock reads (quinn-proto style).
//!
//! Inputs: [`PeerMachine::connect`], [`PeerMachine::submit`], [`PeerMachine::dial_succeeded`]
//! / [`PeerMachine::dial_failed`], [`PeerMachine::attach`], [`PeerMachine::received`],
//! [`PeerMachine::link_lost`], [`PeerMachine::set_blocked`], [`PeerMachine::end`] and
//! [`PeerMachine::handle_timeout`], each with `now`. Outputs, polled: [`PeerMachine::poll_action`]
//! (dial, close, notify, receipts, undelivered reports, window room, end),
//! [`PeerMachine::poll_transmit`] (the next transport message for a connection),
//! [`PeerMachine::poll_delivery`] (the next message for the application) and
//! [`PeerMachine::poll_timeout`] (when to call `handle_timeout`).
//!
//! State lives in owned parts with one job each: [`outbox`] (the send window and resend
//! order), [`inbox`] (reorder, dedup, flow control), [`links`] (connections and their health)
//! and [`routes`] (routes, breakers, the connect pass). See docs/coordinator.md.

mod health;
mod inbox;
mod input;
mod links;
mod outbox;
mod routes;
mod transmit;
mod types;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bitcraps_transport_core::policy::RateLimits;
use bitcraps_transport_core::TransportAddress;
use bytes::BytesMut;

pub use inbox::RecvSnapshot;
pub use types::{
    Action, Delivery, DialId, DisconnectReason, LinkFailure, LinkId, LinkInfo, LocalReason,
    MessageId, Notice, RouteError, RouteFailure, UndeliveredReason,
};

use crate::envelope::CloseCode;
use crate::policy::{BreakerState, CircuitBreaker, Priority, RttConfig};
use inbox::Inbox;
use links::LinkSet;
use outbox::{OutMsg, Outbox};
use routes::RouteTable;

/// The settings the state machine uses (taken from `CoordinatorConfig`).
#[derive(Debug, Clone)]
pub struct MachineConfig {
    /// The RTT estimator of each connection.
    pub rtt: RttConfig,
    /// Idle connections are probed this often.
    pub health_interval: Duration,
    /// Health probes missed in a row before a connection is given up.
    pub max_missed_pings: u32,
    /// PONGs in a row before traffic moves back to a more preferred route.
    pub switch_back_after: u32,
    /// Delay between the starts of two dials of a connect pass.
    pub dial_stagger: Duration,
    /// How long a peer with no routes and no connection keeps its session.
    pub grace: Duration,
    /// Disconnect after this long without application traffic.
    pub idle_timeout: Option<Duration>,
    /// Receive window granted to the remote: messages.
    pub recv_window: u32,
    /// Receive window granted to the remote: bytes.
    pub recv_window_bytes: u32,
    /// The largest payload (for the receive buffer bound).
    pub max_payload: usize,
    /// Receive rate limit (messages wait, never drop).
    pub rate_limits: RateLimits,
    /// Largest transport message the machine builds by coalescing envelopes.
    pub coalesce_limit: usize,
    /// Payloads larger than this travel as their own transport message (no copy) over
    /// connections that promise order.
    pub inline_limit: usize,
    /// An acknowledgement with nothing to ride along waits this long for data going the same
    /// way (at once when a quarter of the receive window was delivered unacknowledged).
    pub ack_delay: Duration,
}

impl MachineConfig {
    /// The settings a coordinator with `config` gives each peer's machine; `max_payload` is the
    /// largest payload its transports carry.
    pub fn from_coordinator(config: &crate::CoordinatorConfig, max_payload: usize) -> Self {
        let c = config;
        Self {
            rtt: c.rtt,
            health_interval: c.health_interval,
            max_missed_pings: c.max_missed_pings,
            switch_back_after: c.switch_back_after,
            dial_stagger: c.dial_stagger,
            grace: c.dial_timeout + c.health_interval,
            idle_timeout: c.idle_timeout,
            recv_window: c.recv_window,
            recv_window_bytes: c.recv_window_bytes,
            max_payload,
            rate_limits: c.rate_limits.clone(),
            coalesce_limit: c.coalesce_limit,
            inline_limit: c.inline_limit,
            ack_delay: c.ack_delay,
        }
    }
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Running,
    Ended,
}

/// One peer's state machine. See the module docs.
#[derive(Debug)]
pub struct PeerMachine {
    config: MachineConfig,
    session: u64,
    out: Outbox,
    inbox: Inbox,
    links: LinkSet,
    routes: RouteTable,
    active: Option<LinkId>,
    last_route: Option<TransportAddress>,
    announced: bool,
    actions: VecDeque<Action>,
    phase: Phase,
    tombstone: Option<RecvSnapshot>,
    /// Last time the remote showed progress on outstanding data (or data became outstanding).
    progress_at: Instant,
    /// A peer with no route and no connection ends its session at this time.
    grace_until: Option<(Instant, LinkFailure)>,
    last_traffic: Instant,
    nonce: u64,
    buf: BytesMut,
}

impl PeerMachine {
    /// A machine for one peer. `session` is this side's random session id (never 0);
    /// `tombstone` is the receive state of a session of this peer that an earlier machine
    /// tracked, so a resumed session keeps its dedup.
    pub fn new(
        config: MachineConfig,
        session: u64,
        tombstone: Option<RecvSnapshot>,
        now: Instant,
    ) -> Self {
        let inbox = Inbox::new(
            u64::from(config.recv_window.max(1)),
            u64::from(config.recv_window_bytes.max(1)),
            config.max_payload as u64,
            config.rate_limits.clone(),
        );
        Self {
            routes: RouteTable::new(config.dial_stagger),
            config,
            session: session.max(1),
            out: Outbox::new(),
            inbox,
            links: LinkSet::default(),
            active: None,
            last_route: None,
            announced: false,
            actions: VecDeque::new(),
            phase: Phase::Running,
            tombstone,
            progress_at: now,
            grace_until: None,
            last_traffic: now,
            nonce: 0,
            buf: BytesMut::new(),
        }
    }

    /// This side's session id.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// True once a connection was ever active in this session.
    pub fn was_connected(&self) -> bool {
        self.announced
    }

    /// True once the session ended (after [`Action::Ended`]).
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Accepted messages not yet finished (acknowledged or reported undelivered).
    pub fn unfinished(&self) -> usize {
        self.out.len()
    }

    /// The connection traffic uses now.
    pub fn active(&self) -> Option<LinkId> {
        self.active
    }

    /// The remote address of the active connection.
    pub fn active_address(&self) -> Option<&TransportAddress> {
        self.links.get(self.active?).map(|l| &l.info.remote)
    }

    /// The RTT estimator of the active connection (read by the stats).
    pub fn active_rtt(&self) -> Option<(LinkId, &crate::policy::RttEstimator)> {
        let id = self.active?;
        self.links.get(id).map(|l| (id, &l.rtt))
    }

    /// Remote addresses of every open connection.
    pub fn connections(&self) -> Vec<TransportAddress> {
        self.links.iter().map(|l| l.info.remote.clone()).collect()
    }

    /// The routes, in preference order.
    pub fn routes(&self) -> Vec<TransportAddress> {
        self.routes.addrs()
    }

    /// The breaker of every route, with the state last reported (kept by the shell beyond
    /// this session).
    pub fn breakers(&self) -> Vec<(TransportAddress, CircuitBreaker, BreakerState)> {
        self.routes.breakers()
    }

    /// The receive state to keep after this machine ends, so a later one resumes dedup.
    pub fn recv_snapshot(&self) -> Option<RecvSnapshot> {
        self.inbox.snapshot().or(self.tombstone)
    }

    /// Messages the receive side holds (test helper).
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> u64 {
        self.inbox.buffered()
    }

    /// Duplicate messages received and dropped (resent after a reconnect or a retransmission).
    pub fn duplicates(&self) -> u64 {
        self.inbox.duplicates()
    }

    /// The next thing for the shell to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next message for the application, if one is ready and the receive rate limit
    /// lets it through at `now`. Call it only when the application can take it (it counts as
    /// delivered, and is acknowledged as such, from this call on).
    pub fn poll_delivery(&mut self, now: Instant) -> Option<Delivery> {
        if self.phase != Phase::Running {
            return None;
        }
        let d = self.inbox.deliver(now)?;
        self.last_traffic = now;
        Some(d)
    }

    /// True if [`poll_delivery`](Self::poll_delivery) would return a message at `now`.
    pub fn has_delivery(&self, now: Instant) -> bool {
        self.phase == Phase::Running && self.inbox.has_delivery(now)
    }

    /// Accepts one application message. The shell bounds how many are unfinished (its send
    /// window); the machine keeps each until acknowledged or reported undelivered.
    pub fn submit(
        &mut self,
        id: MessageId,
        payload: bytes::Bytes,
        priority: Priority,
        receipt: bool,
        now: Instant,
    ) {
        self.last_traffic = now;
        if self.phase != Phase::Running {
            let reason =
                UndeliveredReason::SessionEnded(DisconnectReason::Local(LocalReason::Dropped));
            let len = payload.len();
            if receipt {
                self.actions.push_back(Action::Receipt {
                    id,
                    outcome: Err(reason.clone()),
                });
            }
            self.actions.push_back(Action::Release {
                messages: 1,
                bytes: len,
            });
            self.actions.push_back(Action::Undelivered {
                ids: vec![id],
                reason,
            });
            return;
        }
        let lane = match priority {
            Priority::Interactive => 0,
            Priority::Bulk => 1,
        };
        self.out.push(
            lane,
            OutMsg {
                id,
                payload,
                receipt,
            },
        );
    }

    /// Ends the session now: every unfinished message is reported undelivered, every
    /// connection gets a `CLOSE` and is closed.
    pub fn end(&mut self, reason: DisconnectReason, now: Instant) {
        if self.phase == Phase::Ended {
            return;
        }
        let _ = now;
        self.phase = Phase::Ended;
        let code = match &reason {
            DisconnectReason::FlowControl => Some(CloseCode::FlowControl),
            DisconnectReason::Protocol(_) => Some(CloseCode::Protocol),
            DisconnectReason::Local(_) | DisconnectReason::Idle => Some(CloseCode::Goodbye),
            _ => None,
        };
        self.out.fail_all(
            &UndeliveredReason::SessionEnded(reason.clone()),
            &mut self.actions,
        );
        for id in self.links.ids() {
            self.close_link(id, code, "session ended");
        }
        self.active = None;
        self.actions.push_back(Action::Ended(reason));
    }

    fn close_link(&mut self, id: LinkId, farewell: Option<CloseCode>, reason: &'static str) {
        let Some(mut link) = self.links.remove(id) else {
            return;
        };
        if let Some(i) = link.route {
            self.routes.link_gone(i, id);
        }
        let mut frames = Vec::new();
        if let Some(code) = farewell {
            // A payload announced by a DATA_NEXT must go first, or the CLOSE would be taken
            // for it.
            frames.extend(link.pending_payload.take());
            let mut f = crate::envelope::FrameBuilder::new(BytesMut::new(), 16);
            f.close(code);
            frames.push(f.finish().0);
        }
        self.actions.push_back(Action::Close {
            link: id,
            farewell: frames,
            reason,
        });
    }

    fn next_nonce(&mut self) -> u64 {
        self.nonce += 1;
        self.nonce
    }

    fn routes_len(&self) -> usize {
        self.routes.len()
    }
}
