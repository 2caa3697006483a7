//! [`Session`]: one established association after the handshake. It seals and opens DATA
//! datagrams with explicit counters, keeps the RFC 6479 replay window, sends keep-alives,
//! expires when idle, and runs the close exchange.
//!
//! Hostile or damaged datagrams (malformed, for another session, replayed, failing
//! authentication) are dropped and reported as [`Event::Dropped`]; they never end the session,
//! because anyone can send a datagram with our address and session id on it. Only an
//! authenticated datagram breaking the protocol ends it ([`Event::Violation`]).
//!
//! Close: the closing side sends CLOSE (reason) and resends it with backoff until the remote's
//! CLOSE arrives or the close timeout passes. The side that receives a CLOSE answers with its
//! own (empty) CLOSE and keeps answering retransmissions for the close timeout (draining).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use bitcraps_transport_core::policy::ReplayWindow;
use bitcraps_transport_core::secure::record::{
    clip_reason, RecordOpener, RecordSealer, KIND_CLOSE, KIND_DATA,
};
use bitcraps_transport_core::ProtocolError;

use super::wire::{self, Datagram, KIND_KEEPALIVE, TYPE_DATA};

/// Timers of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTiming {
    /// A keep-alive is sent when nothing was sent for this long.
    pub keepalive: Duration,
    /// The session expires when nothing authentic arrived for this long.
    pub idle_timeout: Duration,
    /// How long a close waits for the remote's answer (and how long the answering side drains).
    pub close_timeout: Duration,
    /// The first CLOSE retransmission comes after this; each later one doubles (at most 1 s).
    pub close_resend: Duration,
}

impl Default for SessionTiming {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            close_resend: Duration::from_millis(100),
        }
    }
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// It did not parse, or is not a DATA datagram for this session.
    NotOurs,
    /// Its counter was already seen or is older than the window.
    Replayed,
    /// It failed authentication (tampered or forged).
    Unauthentic,
    /// Data after the session started closing.
    AfterClose,
}

/// What an incoming datagram meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// An application message.
    Data(Bytes),
    /// A keep-alive (or a retransmitted CLOSE while draining): nothing for the application.
    Nothing,
    /// The remote closed with this reason; an answer is queued ([`Session::poll_transmit`]).
    RemoteClosed(String),
    /// The remote answered our close: the session is done.
    CloseAcknowledged,
    /// Dropped without effect.
    Dropped(DropReason),
    /// An authenticated datagram broke the protocol: end the session with this error.
    Violation(ProtocolError),
}

/// How a session ended on a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Nothing authentic arrived for the idle timeout.
    IdleExpired,
    /// Our CLOSE was not answered within the close timeout.
    CloseUnacknowledged,
    /// The draining period after the remote's close is over.
    Drained,
}

#[derive(Debug)]
enum State {
    Open,
    Closing {
        reason: String,
        next: Instant,
        interval: Duration,
        deadline: Instant,
    },
    Draining {
        until: Instant,
        answer: bool,
    },
    Done,
}

/// One established association.
pub struct Session {
    local_id: u32,
    remote_id: u32,
    sealer: RecordSealer,
    opener: RecordOpener,
    window: ReplayWindow,
    timing: SessionTiming,
    max_payload: usize,
    last_sent: Instant,
    last_received: Instant,
    state: State,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session between our `local_id` and the remote's `remote_id`. `seen` is the replay
    /// window so far (the initiator marks the CONFIRM's counter in it).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        local_id: u32,
        remote_id: u32,
        sealer: RecordSealer,
        opener: RecordOpener,
        seen: ReplayWindow,
        timing: SessionTiming,
        max_payload: usize,
        now: Instant,
    ) -> Self {
        Self {
            local_id,
            remote_id,
            sealer,
            opener,
            window: seen,
            timing,
            max_payload,
            last_sent: now,
            last_received: now,
            state: State::Open,
            scratch: Vec::new(),
        }
    }

    /// True while application data can be sent and received.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// True while answering the remote's close (after [`Event::RemoteClosed`]).
    pub fn is_draining(&self) -> bool {
        matches!(self.state, State::Draining { .. })
    }

    /// True once the session is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn seal(&mut self, kind: u8, body: &[u8], now: Instant, out: &mut BytesMut) -> bool {
        let sealed = wire::seal_datagram(
            TYPE_DATA,
            self.remote_id,
            &mut self.sealer,
            kind,
            body,
            &mut self.scratch,
            out,
        );
        if sealed.is_ok() {
            self.last_sent = now;
        }
        sealed.is_ok()
    }

    /// Seals an application message into `out` as one DATA datagram. False (nothing written)
    /// unless the session is open and the message fits.
    pub fn seal_data(&mut self, payload: &[u8], now: Instant, out: &mut BytesMut) -> bool {
        self.is_open()
            && payload.len() <= self.max_payload
            && self.seal(KIND_DATA, payload, now, out)
    }

    /// As [`Session::seal_data`], but the DATA datagram is appended to what `out` already
    /// holds, so a batch of messages can be sealed back to back into one buffer.
    pub fn append_data(&mut self, payload: &[u8], now: Instant, out: &mut BytesMut) -> bool {
        if !self.is_open() || payload.len() > self.max_payload {
            return false;
        }
        let sealed = wire::append_sealed_datagram(
            TYPE_DATA,
            self.remote_id,
            &mut self.sealer,
            KIND_DATA,
            payload,
            &mut self.scratch,
            out,
        );
        if sealed.is_ok() {
            self.last_sent = now;
        }
        sealed.is_ok()
    }

    /// Starts closing with `reason`; the CLOSE comes out of [`Session::poll_transmit`].
    pub fn close(&mut self, reason: &str, now: Instant) {
        if self.is_open() {
            self.state = State::Closing {
                reason: clip_reason(reason).to_string(),
                next: now,
                interval: self.timing.close_resend,
                deadline: now + self.timing.close_timeout,
            };
        }
    }

    /// Opens one received datagram; decrypted bodies land in `plain` (reused).
    pub fn handle_datagram(
        &mut self,
        datagram: &[u8],
        now: Instant,
        plain: &mut BytesMut,
    ) -> Event {
        let sealed = match wire::parse(datagram) {
            Ok(Datagram::Data(s)) if s.receiver == self.local_id => s,
            _ => return Event::Dropped(DropReason::NotOurs),
        };
        if self.is_done() {
            return Event::Dropped(DropReason::AfterClose);
        }
        if !self.window.check(sealed.counter) {
            return Event::Dropped(DropReason::Replayed);
        }
        let Ok(record) = wire::open_sealed(&self.opener, &sealed, plain) else {
            return Event::Dropped(DropReason::Unauthentic);
        };
        self.window.mark(sealed.counter);
        self.last_received = now;
        match record.kind {
            KIND_DATA if record.body.len() > self.max_payload => {
                Event::Violation(ProtocolError::MessageTooLarge {
                    max: self.max_payload,
                })
            }
            KIND_DATA if self.is_open() => Event::Data(record.body),
            KIND_DATA => Event::Dropped(DropReason::AfterClose),
            KIND_KEEPALIVE => Event::Nothing,
            KIND_CLOSE => match &mut self.state {
                State::Open => {
                    self.state = State::Draining {
                        until: now + self.timing.close_timeout,
                        answer: true,
                    };
                    Event::RemoteClosed(String::from_utf8_lossy(&record.body).into_owned())
                }
                State::Closing { .. } => {
                    self.state = State::Done;
                    Event::CloseAcknowledged
                }
                State::Draining { answer, .. } => {
                    *answer = true;
                    Event::Nothing
                }
                State::Done => Event::Dropped(DropReason::AfterClose),
            },
            other => Event::Violation(ProtocolError::UnexpectedRecord(other)),
        }
    }

    /// Writes the next control datagram due now (CLOSE, close answer, keep-alive) into `out`;
    /// false if none is due.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut BytesMut) -> bool {
        match &mut self.state {
            State::Open if now >= self.last_sent + self.timing.keepalive => {
                self.seal(KIND_KEEPALIVE, &[], now, out)
            }
            State::Closing {
                reason,
                next,
                interval,
                deadline,
            } if now >= *next && now < *deadline => {
                *next = now + *interval;
                *interval = (*interval * 2).min(Duration::from_secs(1));
                let reason = std::mem::take(reason);
                let sent = self.seal(KIND_CLOSE, reason.as_bytes(), now, out);
                if let State::Closing { reason: slot, .. } = &mut self.state {
                    *slot = reason;
                }
                sent
            }
            State::Draining { answer, .. } if *answer => {
                *answer = false;
                self.seal(KIND_CLOSE, &[], now, out)
            }
            _ => false,
        }
    }

    /// When [`Session::handle_timeout`] (and [`Session::poll_transmit`]) should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Open => Some(
                (self.last_sent + self.timing.keepalive)
                    .min(self.last_received + self.timing.idle_timeout),
            ),
            State::Closing { next, deadline, .. } => Some((*next).min(*deadline)),
            State::Draining { until, .. } => Some(*until),
            State::Done => None,
        }
    }

    /// Time passed: reports how the session ended, if it just did.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Ended> {
        let ended = match &self.state {
            State::Open if now >= self.last_received + self.timing.idle_timeout => {
                Ended::IdleExpired
            }
            State::Closing { deadline, .. } if now >= *deadline => Ended::CloseUnacknowledged,
            State::Draining { until, .. } if now >= *until => Ended::Drained,
            _ => return None,
        };
        self.state = State::Done;
        Some(ended)
    }
}
