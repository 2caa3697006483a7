//! [`DialHandshake`]: the initiator's side of the handshake over datagrams, with
//! retransmission (the last handshake datagram is resent on a timer with exponential backoff,
//! a bounded number of times) and an overall deadline.
//!
//! Datagrams that cannot belong to this handshake (wrong type, length or session id) are
//! ignored, so stray traffic cannot end a dial. A HANDSHAKE_2 that fails authentication ends it
//! with a typed error: the Noise state cannot be rewound after a failed read.

use std::time::{Duration, Instant};

use bitcraps_transport_core::policy::LimitRejection;
use bitcraps_transport_core::secure::handshake::InitiatorHandshake;
use bitcraps_transport_core::secure::record::{
    decode_reject, RecordOpener, RecordSealer, KIND_ACCEPT, KIND_REJECT,
};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Error, HandshakeError, PeerId};
use bytes::BytesMut;

use super::wire::{self, Datagram};

/// Retransmission and deadline of a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryTiming {
    /// The first retransmission comes this long after the first send; each later one doubles.
    pub first_resend: Duration,
    /// The interval between retransmissions never grows past this.
    pub max_resend: Duration,
    /// Transmissions of one handshake datagram, the first included.
    pub attempts: u32,
    /// The whole handshake fails after this.
    pub timeout: Duration,
}

impl Default for RetryTiming {
    fn default() -> Self {
        Self {
            first_resend: Duration::from_millis(200),
            max_resend: Duration::from_secs(2),
            attempts: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A finished dial: everything the session needs.
pub struct Established<G> {
    /// The responder's proven identity.
    pub peer: PeerId,
    /// Our session id.
    pub local_id: u32,
    /// The responder's session id.
    pub remote_id: u32,
    /// Seals our records.
    pub sealer: RecordSealer,
    /// Opens the responder's records.
    pub opener: RecordOpener,
    /// The counter of the CONFIRM datagram (to mark in the replay window).
    pub confirm_counter: u64,
    /// What the admission check returned (e.g. a limiter slot).
    pub guard: G,
}

impl<G> std::fmt::Debug for Established<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Established")
            .field("peer", &self.peer)
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .finish_non_exhaustive()
    }
}

/// What a received datagram did to the handshake.
#[derive(Debug)]
pub enum DialStep<G> {
    /// Not for this handshake (or a duplicate); nothing to do.
    Ignored,
    /// Send [`DialHandshake::transmit`] now (HANDSHAKE_3 was just written).
    Send,
    /// The responder accepted: the session can start.
    Established(Box<Established<G>>),
}

enum State<G> {
    AwaitH2(Box<InitiatorHandshake>),
    AwaitConfirm {
        peer: PeerId,
        remote_id: u32,
        sealer: RecordSealer,
        opener: RecordOpener,
        guard: G,
    },
    Done,
}

/// The initiator's handshake machine. No I/O: the caller sends [`DialHandshake::transmit`]
/// when told to, feeds received datagrams to [`DialHandshake::handle`], and calls
/// [`DialHandshake::handle_timeout`] at [`DialHandshake::poll_timeout`].
pub struct DialHandshake<G> {
    state: State<G>,
    local_id: u32,
    transmit: Vec<u8>,
    sent: u32,
    interval: Duration,
    next_resend: Instant,
    deadline: Instant,
    timing: RetryTiming,
    plain: BytesMut,
}

impl<G> DialHandshake<G> {
    /// Starts a handshake as session `local_id`; send [`DialHandshake::transmit`] at once.
    pub fn start(
        identity: &LocalIdentity,
        config: &ChannelConfig,
        expect: Option<PeerId>,
        local_id: u32,
        timing: RetryTiming,
        now: Instant,
    ) -> Result<Self, Error> {
        let (hs, msg1) = InitiatorHandshake::start(identity, config.suite, expect)?;
        Ok(Self::from_parts(hs, &msg1, local_id, timing, now))
    }

    /// Like [`DialHandshake::start`] from an already started Noise machine (test vectors use a
    /// fixed ephemeral key).
    pub fn from_parts(
        hs: InitiatorHandshake,
        msg1: &[u8],
        local_id: u32,
        timing: RetryTiming,
        now: Instant,
    ) -> Self {
        Self {
            state: State::AwaitH2(Box::new(hs)),
            local_id,
            transmit: wire::encode_handshake1(local_id, msg1),
            sent: 1,
            interval: timing.first_resend,
            next_resend: now + timing.first_resend,
            deadline: now + timing.timeout,
            timing,
            plain: BytesMut::new(),
        }
    }

    /// The datagram to (re)send.
    pub fn transmit(&self) -> &[u8] {
        &self.transmit
    }

    /// When [`DialHandshake::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Instant {
        if self.sent < self.timing.attempts {
            self.next_resend.min(self.deadline)
        } else {
            self.deadline
        }
    }

    /// Time passed: `Ok(true)` means resend [`DialHandshake::transmit`]; past the deadline the
    /// handshake fails with [`Error::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Result<bool, Error> {
        if now >= self.deadline {
            self.state = State::Done;
            return Err(Error::Timeout {
                operation: "udp handshake",
                after: self.timing.timeout,
            });
        }
        if now >= self.next_resend && self.sent < self.timing.attempts {
            self.sent += 1;
            self.interval = (self.interval * 2).min(self.timing.max_resend);
            self.next_resend = now + self.interval;
            return Ok(true);
        }
        Ok(false)
    }

    fn resend_from(&mut self, datagram: Vec<u8>, now: Instant) {
        self.transmit = datagram;
        self.sent = 1;
        self.interval = self.timing.first_resend;
        self.next_resend = now + self.interval;
    }

    /// Feeds one received datagram. `admit` is consulted once the responder's identity is
    /// proven, before ours is revealed; its refusal fails the dial with [`Error::Limit`].
    pub fn handle(
        &mut self,
        datagram: &[u8],
        now: Instant,
        admit: impl FnOnce(PeerId) -> Result<G, LimitRejection>,
    ) -> Result<DialStep<G>, Error> {
        let Ok(parsed) = wire::parse(datagram) else {
            return Ok(DialStep::Ignored);
        };
        match (parsed, &mut self.state) {
            (
                Datagram::Handshake2 {
                    initiator,
                    responder,
                    msg2,
                },
                State::AwaitH2(_),
            ) if initiator == self.local_id => {
                let State::AwaitH2(mut hs) = std::mem::replace(&mut self.state, State::Done) else {
                    unreachable!("matched above")
                };
                let peer = hs.read_message2(msg2)?;
                let guard = admit(peer).map_err(Error::Limit)?;
                let (msg3, _, sealer, opener) = hs.write_message3()?;
                self.resend_from(wire::encode_handshake3(responder, &msg3), now);
                self.state = State::AwaitConfirm {
                    peer,
                    remote_id: responder,
                    sealer,
                    opener,
                    guard,
                };
                Ok(DialStep::Send)
            }
            (Datagram::Confirm(sealed), State::AwaitConfirm { opener, .. })
                if sealed.receiver == self.local_id =>
            {
                // A forged CONFIRM fails authentication and is ignored like stray traffic.
                let Ok(record) = wire::open_sealed(opener, &sealed, &mut self.plain) else {
                    return Ok(DialStep::Ignored);
                };
                let State::AwaitConfirm {
                    peer,
                    remote_id,
                    sealer,
                    opener,
                    guard,
                } = std::mem::replace(&mut self.state, State::Done)
                else {
                    unreachable!("matched above")
                };
                match record.kind {
                    KIND_ACCEPT => Ok(DialStep::Established(Box::new(Established {
                        peer,
                        local_id: self.local_id,
                        remote_id,
                        sealer,
                        opener,
                        confirm_counter: sealed.counter,
                        guard,
                    }))),
                    KIND_REJECT => Err(Error::RemoteLimit(decode_reject(&record.body)?)),
                    other => Err(HandshakeError::UnexpectedRecord(other).into()),
                }
            }
            _ => Ok(DialStep::Ignored),
        }
    }
}
