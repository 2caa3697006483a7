//! The connections of one peer and their health: per connection, whether each side's `HELLO`
//! went through, the RTT estimator, the probe in flight (a `PING` with its deadline), what
//! control envelopes it owes (`PONG`s, a `PING`, a `HELLO`, a `CLOSE`), and a `DATA_NEXT`
//! payload to write or to expect next.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::types::{LinkFailure, LinkId, LinkInfo};
use crate::envelope::CloseCode;
use crate::policy::{RttConfig, RttEstimator};

/// `PONG`s owed at most per connection (a peer pinging faster loses some answers).
const MAX_PONGS_DUE: usize = 8;

/// Why a probe was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    /// The periodic health check.
    Health,
    /// Data is outstanding and nothing came back within the RTO.
    Dark,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    pub(crate) nonce: u64,
    pub(crate) sent: Instant,
    pub(crate) deadline: Instant,
    pub(crate) kind: ProbeKind,
}

/// A probe's fate at a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeCheck {
    /// Nothing due.
    Fine,
    /// Missed, but the connection gets another chance.
    Missed,
    /// Missed too often: give the connection up.
    Dead(Duration, u32),
}

/// One connection.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) id: LinkId,
    pub(crate) info: LinkInfo,
    /// The route it was dialed on (or whose address it has), if any.
    pub(crate) route: Option<usize>,
    /// The order links were attached in (newer is larger).
    pub(crate) seq: u64,
    pub(crate) hello_due: bool,
    pub(crate) hello_received: bool,
    /// Data had been written in this session before this connection opened.
    pub(crate) resumed_at_open: bool,
    pub(crate) blocked: bool,
    pub(crate) rtt: RttEstimator,
    pub(crate) min_probe: Duration,
    pub(crate) probe: Option<Probe>,
    pub(crate) ping_due: Option<u64>,
    pub(crate) pongs_due: VecDeque<u64>,
    pub(crate) next_ping: Instant,
    pub(crate) missed: u32,
    pub(crate) pongs_in_row: u32,
    pub(crate) pending_payload: Option<Bytes>,
    pub(crate) expect_payload: Option<(u8, u64, u32)>,
    pub(crate) close_due: Option<CloseCode>,
}

impl Link {
    pub(crate) fn new(
        id: LinkId,
        info: LinkInfo,
        route: Option<usize>,
        seq: u64,
        rtt: RttConfig,
        resumed: bool,
        now: Instant,
    ) -> Self {
        Self {
            id,
            info,
            route,
            seq,
            hello_due: true,
            hello_received: false,
            resumed_at_open: resumed,
            blocked: false,
            rtt: RttEstimator::new(rtt),
            min_probe: Duration::ZERO,
            probe: None,
            ping_due: None,
            pongs_due: VecDeque::new(),
            // The first health check goes out at once: it proves the route and gives the RTT
            // estimator its first sample.
            next_ping: now,
            missed: 0,
            pongs_in_row: 0,
            pending_payload: None,
            expect_payload: None,
            close_due: None,
        }
    }

    /// The probe timeout now.
    pub(crate) fn probe_timeout(&self) -> Duration {
        self.rtt.rto().max(self.min_probe)
    }

    /// Starts a probe (its timeout runs from now, even while the connection is blocked: a
    /// connection too blocked to carry it fails the check too).
    pub(crate) fn start_probe(&mut self, nonce: u64, kind: ProbeKind, now: Instant) {
        self.ping_due = Some(nonce);
        self.probe = Some(Probe {
            nonce,
            sent: now,
            deadline: now + self.probe_timeout(),
            kind,
        });
    }

    pub(crate) fn owe_pong(&mut self, nonce: u64) {
        if self.pongs_due.len() < MAX_PONGS_DUE {
            self.pongs_due.push_back(nonce);
        }
    }

    /// A `PONG` arrived: true if it answered the probe in flight.
    pub(crate) fn on_pong(&mut self, nonce: u64, interval: Duration, now: Instant) -> bool {
        let Some(p) = self.probe.filter(|p| p.nonce == nonce) else {
            return false;
        };
        self.probe = None;
        self.rtt.on_sample(now.saturating_duration_since(p.sent));
        self.missed = 0;
        self.pongs_in_row = self.pongs_in_row.saturating_add(1);
        self.next_ping = p.sent + interval;
        true
    }

    /// Checks the probe in flight at `now`. Health probes get `max_missed` chances (each with
    /// a doubled timeout); a dark probe on a connection that promises delivery gets one.
    pub(crate) fn check_probe(&mut self, max_missed: u32, now: Instant) -> ProbeCheck {
        let Some(p) = self.probe else {
            return ProbeCheck::Fine;
        };
        if now < p.deadline {
            return ProbeCheck::Fine;
        }
        let timeout = p.deadline.saturating_duration_since(p.sent);
        self.probe = None;
        self.ping_due = None;
        self.rtt.on_timeout();
        self.missed += 1;
        self.pongs_in_row = 0;
        let allowed = match p.kind {
            ProbeKind::Dark if self.info.reliable => 1,
            _ => max_missed,
        };
        if self.missed >= allowed {
            ProbeCheck::Dead(timeout, self.missed)
        } else {
            self.next_ping = now;
            ProbeCheck::Missed
        }
    }

    /// The earliest time this connection needs attention.
    pub(crate) fn deadline(&self) -> Instant {
        match self.probe {
            Some(p) => p.deadline,
            None => self.next_ping,
        }
    }

    /// Unresponsive failure for a dead probe.
    pub(crate) fn unresponsive(timeout: Duration, missed: u32) -> LinkFailure {
        LinkFailure::Unresponsive { missed, timeout }
    }
}

/// The connections of one peer.
#[derive(Debug, Default)]
pub(crate) struct LinkSet {
    links: Vec<Link>,
    next_seq: u64,
}

impl LinkSet {
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub(crate) fn insert(&mut self, link: Link) {
        self.links.push(link);
    }

    pub(crate) fn get(&self, id: LinkId) -> Option<&Link> {
        self.links.iter().find(|l| l.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: LinkId) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.id == id)
    }

    pub(crate) fn remove(&mut self, id: LinkId) -> Option<Link> {
        let pos = self.links.iter().position(|l| l.id == id)?;
        Some(self.links.swap_remove(pos))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Link> {
        self.links.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Link> {
        self.links.iter_mut()
    }

    pub(crate) fn ids(&self) -> Vec<LinkId> {
        self.links.iter().map(|l| l.id).collect()
    }

    /// The best connection to carry traffic, other than `except`: by route preference
    /// (connections on no route after every route), newest first.
    pub(crate) fn best(&self, routes: usize, except: Option<LinkId>) -> Option<LinkId> {
        self.links
            .iter()
            .filter(|l| Some(l.id) != except)
            .min_by_key(|l| (l.route.unwrap_or(routes), std::cmp::Reverse(l.seq)))
            .map(|l| l.id)
    }
}
