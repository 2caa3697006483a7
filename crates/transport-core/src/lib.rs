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
//! - For backend authors only, [`backend`]: the plumbing that builds connections
//!   (`new_connection`, `ConnectionIo`, ...), kept out of the application's namespace.
//!
//! Identities, addresses and tickets:
//!
//! ```
//! use bitcraps_transport_core::{Keypair, PeerId, Ticket, TransportAddress};
//!
//! let keypair = Keypair::generate();
//! let me: PeerId = keypair.peer_id();
//! // A PeerId has a stable text form that parses back.
//! assert_eq!(me.to_string().parse::<PeerId>()?, me);
//! // Addresses are URIs; a backend serves the schemes it knows.
//! let route: TransportAddress = "quic://[::1]:4433".parse()?;
//! assert_eq!(route.to_string(), "quic://[::1]:4433");
//! // A ticket is a PeerId and its routes in one checksummed, QR-friendly line.
//! let ticket: Ticket = Ticket::new(me, vec![route, "tcp://127.0.0.1:8765".parse()?])?
//!     .to_string()
//!     .parse()?;
//! assert_eq!(ticket.peer(), me);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The main calls, on any backend (each is an `Arc<dyn Transport>`): `listen`, `accept`, `dial`
//! expecting a PeerId, `send`, `recv`, `close`. Here over the secure channel on an in-memory
//! byte stream, the way a stream backend uses [`stream::StreamContext`]:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), bitcraps_transport_core::Error> {
//! use std::sync::Arc;
//!
//! use bitcraps_transport_core::secure::LocalIdentity;
//! use bitcraps_transport_core::stream::{RawStream, StreamContext};
//! use bitcraps_transport_core::{
//!     Bytes, ChannelConfig, ConnectionLimits, Keypair, SharedLimiter, TransportAddress,
//!     TransportKind,
//! };
//!
//! let context = |keypair| StreamContext {
//!     identity: LocalIdentity::new(keypair),
//!     config: Arc::new(ChannelConfig::default()),
//!     limiter: SharedLimiter::new(ConnectionLimits::default()),
//!     kind: TransportKind::Memory,
//! };
//! let (table, player) = (Keypair::generate(), Keypair::generate());
//! let table_id = table.peer_id();
//! let (a, b) = tokio::io::duplex(64 * 1024);
//! let raw = |stream, local, remote| {
//!     let (reader, writer) = tokio::io::split(stream);
//!     RawStream { reader, writer, local_addr: TransportAddress::Memory(local), remote_addr: TransportAddress::Memory(remote) }
//! };
//! let (table_ctx, player_ctx) = (context(table), context(player));
//! let accept = tokio::spawn(async move { table_ctx.secure_inbound(raw(a, 1, 2)).await });
//! // The dial fails with Error::PeerMismatch unless the other side proves `table_id`.
//! let mut conn = player_ctx.secure_outbound(raw(b, 2, 1), Some(table_id)).await?;
//! let mut table_conn = accept.await.expect("no panic")?;
//! assert_eq!(conn.remote_peer(), table_id);
//!
//! conn.send(Bytes::from_static(b"bet 5 on 7")).await?;
//! assert_eq!(table_conn.recv().await?.as_deref(), Some(&b"bet 5 on 7"[..]));
//! conn.close("done").await?;
//! assert_eq!(table_conn.recv().await?, None); // a clean close
//! # Ok(()) }
//! ```

mod address;
pub mod backend;
mod connection;
mod error;
mod event;
pub mod framing;
mod identity;
#[cfg(test)]
mod identity_vectors;
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
    ChannelConfig, Connection, ConnectionInfo, ConnectionReceiver, ConnectionSender,
    ConnectionStats,
};
pub use error::{BatchError, CloseReason, Error, HandshakeError, ProtocolError, Result};
pub use event::TransportEvent;
pub use identity::{KeyError, Keypair, PeerId};
pub use limits::{AdmissionGuard, InboundTicket, LimiterSnapshot, OutboundTicket, SharedLimiter};
pub use policy::{ConnectionLimits, LimitKind, LimitRejection, SourceKey};
pub use ticket::{
    Ticket, TicketError, MAX_TICKET_LEN, MAX_TICKET_ROUTES, TICKET_PREFIX, TICKET_VERSION,
};
pub use transport::{Capabilities, Inbound, Listener, ListenerStats, Transport, TransportKind};

/// Re-exported so backends and applications name one version of these.
pub use async_trait::async_trait;
pub use bytes::Bytes;
