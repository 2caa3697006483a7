//! The receive side of a session: per lane, a reorder buffer of what arrived and is not yet
//! delivered, exact dedup (every seq below `delivered` is a duplicate, and so is a buffered
//! one), and the receive rate limit as flow control: messages wait here, unacknowledged as
//! delivered, until the limit lets them through, so the sender's window fills and it slows
//! down. A sender that writes past the window it was granted is a flow-control violation.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bitcraps_transport_core::policy::{RateLimiter, RateLimits};
use bytes::Bytes;

use super::types::Delivery;
use crate::envelope::LaneState;

#[derive(Debug, Default)]
struct Lane {
    delivered: u64,
    /// `slots[i]` holds seq `delivered + i` once it arrived.
    slots: VecDeque<Option<Bytes>>,
    /// Leading filled slots (= received - delivered).
    ready: usize,
}

impl Lane {
    fn received(&self) -> u64 {
        self.delivered + self.ready as u64
    }
}

/// What became of one arriving `DATA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// New: buffered for delivery.
    New,
    /// Seen before: dropped (acknowledged again).
    Duplicate,
    /// Beyond the window granted: the sender broke flow control.
    OverWindow,
}

/// The receive state of one remote session, which a later state machine can resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvSnapshot {
    /// The remote's session id.
    pub session: u64,
    /// Seqs below these were delivered, per lane.
    pub delivered: [u64; 2],
}

/// Both lanes of the receive side.
#[derive(Debug)]
pub(crate) struct Inbox {
    lanes: [Lane; 2],
    session: Option<u64>,
    window_messages: u64,
    window_bytes: u64,
    max_message: u64,
    buffered: u64,
    buffered_bytes: u64,
    /// `None` when the limits can never refuse (nothing to account per message).
    rate: Option<RateLimiter<()>>,
    /// Earliest time the rate limit lets the next message through.
    blocked_until: Option<Instant>,
    dirty: [bool; 2],
    /// When the oldest unsent state change happened (acknowledgements are delayed a little
    /// so they ride along with data).
    dirty_since: Option<Instant>,
    /// Deliveries not yet acknowledged, and their bytes.
    unacked_deliveries: u64,
    unacked_bytes: u64,
    duplicates: u64,
}

impl Inbox {
    pub(crate) fn new(
        window_messages: u64,
        window_bytes: u64,
        max_message: u64,
        limits: RateLimits,
    ) -> Self {
        let unlimited = limits.messages_per_second == u32::MAX
            && limits.message_burst == u32::MAX
            && limits.bytes_per_second == u64::MAX
            && limits.byte_burst == u64::MAX;
        let mut limits = limits;
        limits.max_keys = 1;
        Self {
            lanes: [Lane::default(), Lane::default()],
            session: None,
            window_messages,
            window_bytes,
            max_message,
            buffered: 0,
            buffered_bytes: 0,
            rate: (!unlimited).then(|| RateLimiter::new(limits)),
            blocked_until: None,
            dirty: [false; 2],
            dirty_since: None,
            unacked_deliveries: 0,
            unacked_bytes: 0,
            duplicates: 0,
        }
    }

    /// Messages buffered (arrived, not delivered).
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> u64 {
        self.buffered
    }

    /// Duplicates dropped so far.
    pub(crate) fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The remote session tracked (if any).
    pub(crate) fn session(&self) -> Option<u64> {
        self.session
    }

    /// Starts tracking `session` afresh, or resumes it from `snapshot`.
    pub(crate) fn adopt(&mut self, session: u64, snapshot: Option<RecvSnapshot>) {
        self.lanes = [Lane::default(), Lane::default()];
        self.buffered = 0;
        self.buffered_bytes = 0;
        if let Some(s) = snapshot.filter(|s| s.session == session) {
            for (l, d) in self.lanes.iter_mut().zip(s.delivered) {
                l.delivered = d;
            }
        }
        self.session = Some(session);
        self.dirty = [true; 2];
    }

    pub(crate) fn snapshot(&self) -> Option<RecvSnapshot> {
        Some(RecvSnapshot {
            session: self.session?,
            delivered: [self.lanes[0].delivered, self.lanes[1].delivered],
        })
    }

    pub(crate) fn state(&self, lane: usize) -> LaneState {
        let l = &self.lanes[lane];
        LaneState {
            delivered: l.delivered,
            received: l.received(),
        }
    }

    /// Lanes whose state changed since they were last taken.
    pub(crate) fn take_dirty(&mut self, lane: usize) -> bool {
        let was = std::mem::take(&mut self.dirty[lane]);
        if !self.any_dirty() {
            self.dirty_since = None;
            self.unacked_deliveries = 0;
            self.unacked_bytes = 0;
        }
        was
    }

    pub(crate) fn mark_dirty(&mut self, lane: usize) {
        self.dirty[lane] = true;
    }

    pub(crate) fn any_dirty(&self) -> bool {
        self.dirty[0] || self.dirty[1]
    }

    /// When the acknowledgement of the oldest unsent change is due (`delay` after it), or at
    /// once when a quarter of the window (messages or bytes) was delivered unacknowledged.
    pub(crate) fn ack_due(&self, delay: Duration) -> Option<Instant> {
        if !self.any_dirty() {
            return None;
        }
        let since = self.dirty_since?;
        if self.unacked_deliveries * 4 >= self.window_messages
            || self.unacked_bytes * 4 >= self.window_bytes
        {
            return Some(since);
        }
        Some(since + delay)
    }

    /// Notes that state changed at `now` (starts the acknowledgement delay).
    pub(crate) fn touch(&mut self, now: Instant) {
        if self.dirty_since.is_none() {
            self.dirty_since = Some(now);
        }
    }

    /// Takes one arriving message.
    pub(crate) fn arrive(&mut self, lane: u8, seq: u64, payload: Bytes) -> Arrival {
        let i = usize::from(lane & 1);
        let l = &mut self.lanes[i];
        if seq < l.delivered {
            self.dirty[i] = true;
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        let offset = seq - l.delivered;
        if offset >= self.window_messages {
            return Arrival::OverWindow;
        }
        let offset = offset as usize;
        if l.slots.get(offset).is_some_and(Option::is_some) {
            self.dirty[i] = true;
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        let len = payload.len() as u64;
        if self.buffered + 1 > self.window_messages
            || self.buffered_bytes + len > self.window_bytes + self.max_message
        {
            return Arrival::OverWindow;
        }
        if l.slots.len() > offset {
            l.slots[offset] = Some(payload); // a hole filled
        } else {
            l.slots.resize(offset, None);
            l.slots.push_back(Some(payload));
        }
        self.buffered += 1;
        self.buffered_bytes += len;
        while l.slots.get(l.ready).is_some_and(Option::is_some) {
            l.ready += 1;
        }
        self.dirty[i] = true;
        Arrival::New
    }

    /// True if a message is ready and the rate limit would let it through at `now`.
    pub(crate) fn has_delivery(&self, now: Instant) -> bool {
        self.lanes.iter().any(|l| l.ready > 0) && self.blocked_until.is_none_or(|t| now >= t)
    }

    /// Forgets a rate-limit wait that has passed (the timer for it fired).
    pub(crate) fn expire_block(&mut self, now: Instant) {
        if self.blocked_until.is_some_and(|t| now >= t) {
            self.blocked_until = None;
        }
    }

    /// When the rate limit next lets a waiting message through (if one waits for it).
    pub(crate) fn next_release(&self) -> Option<Instant> {
        self.blocked_until
            .filter(|_| self.lanes.iter().any(|l| l.ready > 0))
    }

    /// The next message for the application (interactive first), if the rate limit allows.
    pub(crate) fn deliver(&mut self, now: Instant) -> Option<Delivery> {
        let i = (0..2).find(|&i| self.lanes[i].ready > 0)?;
        let len = self.lanes[i].slots.front()?.as_ref()?.len();
        let verdict = match &mut self.rate {
            Some(rate) => rate.check(&(), len, now),
            None => Ok(()),
        };
        match verdict {
            Ok(()) => self.blocked_until = None,
            // Larger than the whole byte burst: it can never pass the bucket; let it through
            // alone rather than stall the session.
            Err(Duration::MAX) => self.blocked_until = None,
            Err(wait) => {
                self.blocked_until = Some(now + wait);
                return None;
            }
        }
        let l = &mut self.lanes[i];
        let payload = l.slots.pop_front()??;
        let seq = l.delivered;
        l.delivered += 1;
        l.ready -= 1;
        self.buffered -= 1;
        self.buffered_bytes -= payload.len() as u64;
        self.dirty[i] = true;
        self.unacked_deliveries += 1;
        self.unacked_bytes += payload.len() as u64;
        self.touch(now);
        Some(Delivery {
            lane: i as u8,
            seq,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox(window: u64) -> Inbox {
        Inbox::new(window, 1 << 20, 1 << 16, RateLimits::unlimited())
    }

    #[test]
    fn reorders_dedups_and_delivers_in_seq_order() {
        let now = Instant::now();
        let mut i = inbox(8);
        i.adopt(1, None);
        assert_eq!(i.arrive(1, 1, Bytes::from_static(b"b")), Arrival::New);
        assert!(!i.has_delivery(now), "seq 0 is missing");
        assert_eq!(i.arrive(1, 0, Bytes::from_static(b"a")), Arrival::New);
        assert_eq!(i.arrive(1, 0, Bytes::from_static(b"a")), Arrival::Duplicate);
        assert_eq!(
            i.state(1),
            LaneState {
                delivered: 0,
                received: 2
            }
        );
        assert_eq!(i.deliver(now).unwrap().payload, "a");
        assert_eq!(i.deliver(now).unwrap().payload, "b");
        assert!(i.deliver(now).is_none());
        assert_eq!(i.arrive(1, 1, Bytes::from_static(b"b")), Arrival::Duplicate);
        assert_eq!(
            i.state(1),
            LaneState {
                delivered: 2,
                received: 2
            }
        );
    }

    #[test]
    fn writing_past_the_window_is_a_violation() {
        let mut i = inbox(2);
        i.adopt(1, None);
        assert_eq!(i.arrive(0, 2, Bytes::new()), Arrival::OverWindow);
        assert_eq!(i.arrive(0, 0, Bytes::new()), Arrival::New);
        assert_eq!(i.arrive(1, 0, Bytes::new()), Arrival::New);
        // Two buffered over both lanes: the window is full.
        assert_eq!(i.arrive(0, 1, Bytes::new()), Arrival::OverWindow);
    }

    #[test]
    fn the_rate_limit_holds_messages_back_instead_of_dropping_them() {
        let now = Instant::now();
        let limits = RateLimits {
            messages_per_second: 10,
            message_burst: 1,
            ..RateLimits::unlimited()
        };
        let mut i = Inbox::new(8, 1 << 20, 1 << 16, limits);
        i.adopt(1, None);
        i.arrive(0, 0, Bytes::new());
        i.arrive(0, 1, Bytes::new());
        assert!(i.deliver(now).is_some());
        assert!(i.deliver(now).is_none());
        let at = i.next_release().unwrap();
        assert!(at > now);
        assert!(!i.has_delivery(now));
        assert!(i.has_delivery(at));
        assert_eq!(i.deliver(at).unwrap().seq, 1);
    }

    #[test]
    fn acknowledgements_wait_a_little_unless_a_quarter_of_the_window_was_delivered() {
        let now = Instant::now();
        let delay = Duration::from_millis(1);
        // 8 messages or 4 KiB of window: a quarter is 2 messages or 1 KiB.
        let mut i = Inbox::new(8, 4096, 4096, RateLimits::unlimited());
        i.adopt(1, None);
        i.take_dirty(0);
        i.take_dirty(1);
        i.arrive(1, 0, Bytes::from(vec![0; 10]));
        i.touch(now);
        assert_eq!(i.ack_due(delay), Some(now + delay));
        i.deliver(now).unwrap();
        assert_eq!(
            i.ack_due(delay),
            Some(now + delay),
            "one small delivery waits"
        );
        i.arrive(1, 1, Bytes::from(vec![0; 10]));
        i.deliver(now).unwrap();
        assert_eq!(i.ack_due(delay), Some(now), "two of eight: at once");
        i.take_dirty(1);
        assert_eq!(i.ack_due(delay), None);
        i.arrive(1, 2, Bytes::from(vec![0; 1024]));
        i.deliver(now).unwrap();
        assert_eq!(
            i.ack_due(delay),
            Some(now),
            "a quarter of the bytes: at once"
        );
    }

    #[test]
    fn a_snapshot_resumes_dedup() {
        let now = Instant::now();
        let mut i = inbox(8);
        i.adopt(7, None);
        i.arrive(1, 0, Bytes::new());
        i.deliver(now).unwrap();
        let snap = i.snapshot().unwrap();
        let mut j = inbox(8);
        j.adopt(7, Some(snap));
        assert_eq!(j.arrive(1, 0, Bytes::new()), Arrival::Duplicate);
        let mut k = inbox(8);
        k.adopt(8, Some(snap)); // another session: fresh
        assert_eq!(k.arrive(1, 0, Bytes::new()), Arrival::New);
    }
}
