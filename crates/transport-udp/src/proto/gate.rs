//! The two traits through which the sans-IO [`Acceptor`](super::accept::Acceptor) consults its
//! shell: [`Gate`] (limits and readiness) and [`SessionHandle`] (whether a session ended).

use std::net::SocketAddr;

use bitcraps_transport_core::policy::LimitRejection;
use bitcraps_transport_core::PeerId;

/// The shell's decisions, consulted by the [`Acceptor`](super::accept::Acceptor).
pub trait Gate {
    /// Held while an inbound handshake runs (dropping it without success records a failure).
    type Ticket;
    /// Held while an admitted connection lives.
    type Guard;
    /// A new handshake from `from`, before any DH work.
    fn check_inbound(&mut self, from: SocketAddr) -> Result<Self::Ticket, LimitRejection>;
    /// The handshake of `ticket` authenticated its peer (admitted or not).
    fn handshake_done(&mut self, ticket: Self::Ticket);
    /// Admits the authenticated `peer`.
    fn admit(&mut self, peer: PeerId) -> Result<Self::Guard, LimitRejection>;
    /// False while the application cannot take another connection: HANDSHAKE_3 is then ignored
    /// (the initiator retransmits it).
    fn ready(&self) -> bool {
        true
    }
}

/// A session handle the shell attaches to an established association.
pub trait SessionHandle {
    /// True once the session ended (its association can go).
    fn is_closed(&self) -> bool;
}
