//! `bitcraps-mesh`: a sans-IO multi-hop mesh relay over any authenticated links.
//!
//! The [`Mesh`] engine owns no sockets, tasks, locks or clocks, in the style of `quinn-proto`:
//! the caller feeds it inputs ([`Mesh::link_up`], [`Mesh::link_down`], [`Mesh::handle_packet`],
//! [`Mesh::send`], [`Mesh::handle_timeout`]) with the current `Instant`, then drains its outputs
//! ([`Mesh::poll_action`], [`Mesh::poll_timeout`]). Randomness comes from a seed the caller gives.
//!
//! Packets ([`wire`]) carry an origin, a destination (a peer or everyone), a message id, a TTL
//! and a hop count, and are signed by their origin ([`crypto`]); directed payloads are encrypted
//! to the destination. State lives in owned parts with one job each: the duplicate cache
//! ([`dedup`]), the route table ([`routes`]), the relay scheduler ([`relay`]) and the
//! store-and-forward buffer ([`store`]). [`sim`] runs many engines over simulated radio links.
//! With the `transport` feature (default), [`MeshTransport`] runs the engine as a
//! `bitcraps_transport_core::Transport` for `mesh://<peer-id>` addresses.
//! The relay rules and defaults are explained in `docs/mesh.md`; the wire format in
//! `docs/protocol.md`.

pub mod config;
pub mod crypto;
pub mod dedup;
mod engine;
mod forward;
pub mod frame;
mod inbound;
pub mod relay;
pub mod routes;
pub mod sim;
pub mod store;
#[cfg(feature = "transport")]
pub mod transport;
pub mod wire;

#[cfg(test)]
mod vectors;

use bytes::Bytes;

pub use bitcraps_transport_core::{Keypair, PeerId};
pub use config::{ConfigError, MeshConfig, RelayPolicy, StoreLimits};
pub use crypto::CryptoError;
pub use engine::{MemoryUsage, Mesh, Stats, MAX_LINKS};
pub use inbound::{Accepted, PacketError};
#[cfg(feature = "transport")]
pub use transport::{
    MeshBroadcast, MeshBroadcasts, MeshTransport, MeshTransportConfig, MeshTransportError,
    MeshTransportStats,
};
pub use wire::{DecodeError, Destination, MessageId, Packet};

/// The caller's name for one link (a connection to a neighbour), unique while it is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// What the engine asks its caller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `bytes` on `link`.
    Transmit {
        /// The link.
        link: LinkId,
        /// One encoded packet.
        bytes: Bytes,
    },
    /// Hand a payload to the application: a broadcast, or a directed packet for us (decrypted).
    Deliver {
        /// Who sent it (verified).
        origin: PeerId,
        /// Broadcast or us.
        destination: Destination,
        /// The message id.
        id: MessageId,
        /// Hops it travelled.
        hops: u8,
        /// The plaintext.
        payload: Bytes,
    },
}

/// Why [`Mesh::send`] refused a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The payload could not be sealed (too long, or a bad destination key).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The duplicate cache is full of live entries; try later.
    #[error("duplicate cache full")]
    Overloaded,
    /// A packet to ourselves.
    #[error("destination is this node")]
    ToSelf,
    /// Neighbour lists are the engine's own.
    #[error("neighbour lists are sent by the engine")]
    Neighbours,
}
