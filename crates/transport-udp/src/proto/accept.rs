//! [`Acceptor`]: the responder's side of one socket. It answers handshakes, keeps the
//! association table, and routes sealed datagrams of established sessions to their handles.
//!
//! Rules it enforces:
//! - Anti-amplification: to an address that has not completed HANDSHAKE_3 it sends only
//!   HANDSHAKE_2 (202 bytes), once per HANDSHAKE_1 received (202 bytes, padded); refused or
//!   malformed datagrams get no answer at all.
//! - A new HANDSHAKE_1 is checked by [`Gate::check_inbound`] (per-source rate, cooldown,
//!   handshakes in flight) before any Diffie-Hellman work; a retransmitted one gets the stored
//!   HANDSHAKE_2 again at no cost.
//! - After HANDSHAKE_3 the proven peer goes through [`Gate::admit`]; a refusal is answered with
//!   a sealed REJECT, kept for retransmitted HANDSHAKE_3s until the handshake timeout.
//! - The table is capped; handshakes and rejections expire after the handshake timeout,
//!   sessions leave when their handle reports closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::Rng;

use bitcraps_transport_core::policy::{LimitKind, LimitRejection};
use bitcraps_transport_core::secure::handshake::ResponderHandshake;
use bitcraps_transport_core::secure::record::{
    encode_reject, RecordOpener, RecordSealer, KIND_ACCEPT, KIND_REJECT,
};
use bitcraps_transport_core::secure::{CipherSuite, LocalIdentity};
use bitcraps_transport_core::{Error, PeerId};

pub use super::gate::{Gate, SessionHandle};
use super::table::{AssocKey, AssociationTable};
use super::wire::{self, Datagram, TYPE_CONFIRM};

/// Settings of an [`Acceptor`].
#[derive(Debug, Clone)]
pub struct AcceptorConfig {
    /// This node's identity.
    pub identity: Arc<LocalIdentity>,
    /// The suites accepted.
    pub accepted_suites: Vec<CipherSuite>,
    /// A handshake (and a stored rejection) expires after this.
    pub handshake_timeout: Duration,
    /// Associations held at most (handshakes, rejections and sessions).
    pub max_associations: usize,
}

/// A session the shell should start.
pub struct Accepted<G> {
    /// The association (the remote's address and our session id).
    pub key: AssocKey,
    /// The remote's session id.
    pub remote_id: u32,
    /// The initiator's proven identity.
    pub peer: PeerId,
    /// Seals our records (the CONFIRM used its first nonce).
    pub sealer: RecordSealer,
    /// Opens the initiator's records.
    pub opener: RecordOpener,
    /// The admission guard.
    pub guard: G,
    /// The CONFIRM (ACCEPT) datagram to send now.
    pub confirm: Vec<u8>,
}

impl<G> std::fmt::Debug for Accepted<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("key", &self.key)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// Why a datagram was dropped without effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ignored {
    /// It did not parse.
    Malformed,
    /// It belongs to no association, or to one in another state.
    Unknown,
    /// The listener stopped accepting.
    NotAccepting,
    /// The application cannot take another connection yet.
    NotReady,
}

/// What the shell does with a datagram.
pub enum Action<'a, G: Gate, H> {
    /// Nothing.
    Ignore(Ignored),
    /// Send this datagram back to the source.
    Reply(Vec<u8>),
    /// A sealed datagram of an established session: pass it to the session's handle.
    Route(&'a H),
    /// A handshake completed and was admitted: send `confirm`, start the session, then
    /// [`Acceptor::attach`] its handle.
    Accepted(Box<Accepted<G::Guard>>),
    /// An attempt was refused or failed; `reply` (a sealed REJECT) goes back to the source.
    Refused {
        /// A datagram to send back, if any.
        reply: Option<Vec<u8>>,
        /// Why.
        error: Error,
        /// True if a limit refused it (as opposed to a failed handshake).
        by_limit: bool,
    },
}

enum Slot<G: Gate, H> {
    Handshaking {
        // Boxed: a Noise state is ~900 bytes, a session slot a few dozen.
        hs: Box<ResponderHandshake>,
        h2: Vec<u8>,
        ticket: G::Ticket,
        deadline: Instant,
    },
    Rejected {
        reply: Vec<u8>,
        deadline: Instant,
    },
    Session {
        handle: Option<H>,
        confirm: Vec<u8>,
    },
}

/// The responder's sans-IO state for one socket.
pub struct Acceptor<G: Gate, H> {
    config: AcceptorConfig,
    table: AssociationTable<Slot<G, H>>,
    rng: StdRng,
    accepting: bool,
    scratch: Vec<u8>,
    out: BytesMut,
}

impl<G: Gate, H: SessionHandle> Acceptor<G, H> {
    /// An acceptor drawing session ids from `rng`.
    pub fn new(config: AcceptorConfig, rng: StdRng) -> Self {
        Self {
            table: AssociationTable::new(config.max_associations),
            config,
            rng,
            accepting: true,
            scratch: Vec::new(),
            out: BytesMut::new(),
        }
    }

    /// Associations held (handshakes, rejections, sessions).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True if no association is held.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Sessions whose handle is still open.
    pub fn live_sessions(&self) -> usize {
        self.table
            .values()
            .filter(|s| matches!(s, Slot::Session { handle: Some(h), .. } if !h.is_closed()))
            .count()
    }

    /// Stops answering new handshakes and abandons those in progress; sessions go on.
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
        self.table
            .retain(|_, s| matches!(s, Slot::Session { .. }), |_, _| {});
    }

    /// Attaches the session handle of an [`Action::Accepted`] association.
    pub fn attach(&mut self, key: &AssocKey, handle: H) {
        if let Some(Slot::Session { handle: slot, .. }) = self.table.get_mut(key) {
            *slot = Some(handle);
        }
    }

    /// Removes expired handshakes and rejections and ended sessions. Returns the sources of
    /// handshakes that timed out (their tickets recorded a failure).
    pub fn sweep(&mut self, now: Instant) -> Vec<SocketAddr> {
        let mut timed_out = Vec::new();
        self.table.retain(
            |_, slot| match slot {
                Slot::Handshaking { deadline, .. } | Slot::Rejected { deadline, .. } => {
                    now < *deadline
                }
                Slot::Session {
                    handle: Some(h), ..
                } => !h.is_closed(),
                Slot::Session { handle: None, .. } => true,
            },
            |key, slot| {
                if let Slot::Handshaking { .. } = slot {
                    timed_out.push(key.addr);
                }
            },
        );
        timed_out
    }

    /// Handles one datagram from `from`.
    pub fn handle(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
        gate: &mut G,
    ) -> Action<'_, G, H> {
        let Ok(parsed) = wire::parse(datagram) else {
            return Action::Ignore(Ignored::Malformed);
        };
        match parsed {
            Datagram::Data(sealed) => {
                let key = AssocKey {
                    addr: from,
                    local_id: sealed.receiver,
                };
                match self.table.get(&key) {
                    Some(Slot::Session {
                        handle: Some(h), ..
                    }) => Action::Route(h),
                    _ => Action::Ignore(Ignored::Unknown),
                }
            }
            Datagram::Handshake1 { initiator, msg1 } => {
                self.handshake1(from, initiator, msg1, now, gate)
            }
            Datagram::Handshake3 { responder, msg3 } => {
                let key = AssocKey {
                    addr: from,
                    local_id: responder,
                };
                self.handshake3(key, msg3, now, gate)
            }
            Datagram::Handshake2 { .. } | Datagram::Confirm(_) => Action::Ignore(Ignored::Unknown),
        }
    }

    fn handshake1(
        &mut self,
        from: SocketAddr,
        initiator: u32,
        msg1: &[u8],
        now: Instant,
        gate: &mut G,
    ) -> Action<'_, G, H> {
        if let Some(key) = self.table.find_remote(from, initiator) {
            // A retransmission: the same answer, byte for byte, no new work.
            return match self.table.get(&key) {
                Some(Slot::Handshaking { h2, .. }) => Action::Reply(h2.clone()),
                _ => Action::Ignore(Ignored::Unknown),
            };
        }
        if !self.accepting {
            return Action::Ignore(Ignored::NotAccepting);
        }
        if self.table.is_full() {
            self.sweep(now);
        }
        if self.table.is_full() {
            return Action::Refused {
                reply: None,
                error: Error::Limit(LimitRejection {
                    limit: LimitKind::TotalConnections,
                    retry_after: None,
                }),
                by_limit: true,
            };
        }
        let ticket = match gate.check_inbound(from) {
            Ok(t) => t,
            Err(rejection) => {
                return Action::Refused {
                    reply: None,
                    error: Error::Limit(rejection),
                    by_limit: true,
                }
            }
        };
        let (hs, msg2) = match ResponderHandshake::respond(
            &self.config.identity,
            &self.config.accepted_suites,
            msg1,
        ) {
            Ok(r) => r,
            Err(e) => {
                drop(ticket);
                return Action::Refused {
                    reply: None,
                    error: e.into(),
                    by_limit: false,
                };
            }
        };
        let rng = &mut self.rng;
        let slot = Slot::Handshaking {
            hs: Box::new(hs),
            h2: Vec::new(),
            ticket,
            deadline: now + self.config.handshake_timeout,
        };
        let Ok(key) = self.table.insert(from, initiator, slot, || rng.gen()) else {
            return Action::Ignore(Ignored::Unknown);
        };
        let h2 = wire::encode_handshake2(initiator, key.local_id, &msg2);
        if let Some(Slot::Handshaking { h2: stored, .. }) = self.table.get_mut(&key) {
            stored.clone_from(&h2);
        }
        Action::Reply(h2)
    }

    fn handshake3(
        &mut self,
        key: AssocKey,
        msg3: &[u8],
        now: Instant,
        gate: &mut G,
    ) -> Action<'_, G, H> {
        match self.table.get(&key) {
            Some(Slot::Handshaking { .. }) => {}
            // The CONFIRM or REJECT was lost: the same answer again (the address is validated).
            Some(Slot::Session { confirm, .. }) => return Action::Reply(confirm.clone()),
            Some(Slot::Rejected { reply, .. }) => return Action::Reply(reply.clone()),
            None => return Action::Ignore(Ignored::Unknown),
        }
        if !gate.ready() {
            return Action::Ignore(Ignored::NotReady);
        }
        let remote_id = self.table.remote_id(&key).unwrap_or_default();
        let Some(Slot::Handshaking { hs, ticket, .. }) = self.table.remove(&key) else {
            return Action::Ignore(Ignored::Unknown);
        };
        let (peer, mut sealer, opener) = match hs.read_message3(msg3) {
            Ok(r) => r,
            Err(e) => {
                drop(ticket);
                return Action::Refused {
                    reply: None,
                    error: e.into(),
                    by_limit: false,
                };
            }
        };
        gate.handshake_done(ticket);
        let (kind, body, guard) = match gate.admit(peer) {
            Ok(g) => (KIND_ACCEPT, Vec::new(), Ok(g)),
            Err(r) => (KIND_REJECT, encode_reject(&r), Err(r)),
        };
        let sealed = wire::seal_datagram(
            TYPE_CONFIRM,
            remote_id,
            &mut sealer,
            kind,
            &body,
            &mut self.scratch,
            &mut self.out,
        );
        if let Err(e) = sealed {
            return Action::Refused {
                reply: None,
                error: e.into(),
                by_limit: false,
            };
        }
        let confirm = self.out.to_vec();
        let keep_id = |id: u32| move || id;
        match guard {
            Ok(guard) => {
                let slot = Slot::Session {
                    handle: None,
                    confirm: confirm.clone(),
                };
                if self
                    .table
                    .insert(key.addr, remote_id, slot, keep_id(key.local_id))
                    .is_err()
                {
                    return Action::Ignore(Ignored::Unknown);
                }
                Action::Accepted(Box::new(Accepted {
                    key,
                    remote_id,
                    peer,
                    sealer,
                    opener,
                    guard,
                    confirm,
                }))
            }
            Err(rejection) => {
                let slot = Slot::Rejected {
                    reply: confirm.clone(),
                    deadline: now + self.config.handshake_timeout,
                };
                let _ = self
                    .table
                    .insert(key.addr, remote_id, slot, keep_id(key.local_id));
                Action::Refused {
                    reply: Some(confirm),
                    error: Error::Limit(rejection),
                    by_limit: true,
                }
            }
        }
    }
}
