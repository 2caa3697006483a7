//! # bitcraps-transport-core
//!
//! The contract every bitcraps-transport backend implements, and the pieces they share:
//!
//! - Identities: [`PeerId`] (an Ed25519 public key) and [`Keypair`].
//! - Addresses: [`TransportAddress`], with a URI text form (`tcp://127.0.0.1:8765`).
//! - The [`Transport`] / [`Listener`] traits and the [`Connection`] they produce: message
//!   oriented, authenticated, split into a cloneable sender and an owned receiver.
//! - The secure channel ([`secure`]): Noise XX with each side's Ed25519 identity bound to its
//!   Noise static key; [`stream`] runs it over any byte stream.
//! - Framing ([`framing`]): `u32` big-endian length prefixes, checked before allocation.
//! - Policies ([`policy`]): the connection limiter, token buckets and the replay window, as
//!   plain structs with time passed in; [`SharedLimiter`] shares one between tasks.
//! - The pre-handshake refusal on byte streams ([`refusal`]).
//! - Typed errors ([`Error`]) and events ([`TransportEvent`]).
//!
//! ```no_run
//! # async fn demo(transport: &dyn bitcraps_transport_core::Transport) -> bitcraps_transport_core::Result<()> {
//! use bitcraps_transport_core::TransportAddress;
//! let addr: TransportAddress = "tcp://127.0.0.1:8765".parse()?;
//! let mut conn = transport.dial(&addr, None).await?;
//! conn.send(bytes::Bytes::from_static(b"roll")).await?;
//! let reply = conn.recv().await?;
//! conn.close("done").await?;
//! # let _ = reply; Ok(()) }
//! ```

mod address;
mod connection;
mod error;
mod event;
pub mod framing;
mod identity;
mod inbound;
mod limits;
pub mod policy;
pub mod refusal;
pub mod secure;
pub mod stream;
mod ticket;
mod transport;

pub use address::{AddressError, TransportAddress, WebSocketAddress};
pub use connection::{
    new_connection, ChannelConfig, Connection, ConnectionInfo, ConnectionIo, ConnectionReceiver,
    ConnectionSender, ConnectionStats, IncomingSender, LinkHandle, Outgoing,
};
pub use error::{BatchError, CloseReason, Error, HandshakeError, ProtocolError, Result};
pub use event::TransportEvent;
pub use identity::{KeyError, Keypair, PeerId};
pub use inbound::{finish_inbound, ListenerCounters};
pub use limits::{AdmissionGuard, InboundTicket, LimiterSnapshot, OutboundTicket, SharedLimiter};
pub use policy::{ConnectionLimits, LimitKind, LimitRejection, SourceKey};
pub use ticket::{
    Ticket, TicketError, MAX_TICKET_LEN, MAX_TICKET_ROUTES, TICKET_PREFIX, TICKET_VERSION,
};
pub use transport::{
    ensure_supported, Capabilities, Inbound, Listener, ListenerStats, Transport, TransportKind,
};

/// Re-exported so backends and applications name one version of these.
pub use async_trait::async_trait;
pub use bytes::Bytes;
