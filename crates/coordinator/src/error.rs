//! [`CoordinatorError`]: what the coordinator's operations return.

use std::time::Duration;

use bitcraps_transport_core::{PeerId, TransportAddress};

use crate::machine::RouteFailure;

/// Result with [`CoordinatorError`].
pub type Result<T, E = CoordinatorError> = std::result::Result<T, E>;

/// Why a coordinator operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinatorError {
    /// No configured transport supports the address.
    #[error("no transport supports {0}")]
    NoTransport(TransportAddress),
    /// The peer is not known (never connected, or disconnected).
    #[error("peer {0} is not connected")]
    NotConnected(PeerId),
    /// The peer was disconnected while the operation waited.
    #[error("peer {0} was disconnected")]
    Disconnected(PeerId),
    /// Every route of the peer failed or was refused by its breaker; each route's typed
    /// failure is given, in the order they failed.
    #[error("no route to peer {peer} succeeded: {}", failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "))]
    AllRoutesFailed {
        /// The peer.
        peer: PeerId,
        /// One per route tried.
        failures: Vec<RouteFailure>,
    },
    /// `connect_to_peer` was given no route.
    #[error("no route given")]
    NoRoutes,
    /// The message is larger than every transport allows once the envelope header is added.
    #[error("message of {len} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// The message's size.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The peer's unacknowledged-message window stayed full for the send timeout.
    #[error("peer {peer}'s send window stayed full for {after:?}")]
    WindowTimeout {
        /// The peer.
        peer: PeerId,
        /// How long the send waited.
        after: Duration,
    },
    /// The peer table is full (`CoordinatorConfig::max_peers`).
    #[error("peer table full ({0} peers)")]
    TooManyPeers(usize),
    /// One of the core's transport errors (dial, listen, limits).
    #[error(transparent)]
    Transport(#[from] bitcraps_transport_core::Error),
    /// The builder was given no transport.
    #[error("no transport configured")]
    NoTransports,
    /// The builder's transports have different identities.
    #[error("the transports have different identities")]
    MixedIdentities,
    /// The coordinator has been shut down.
    #[error("the coordinator is shut down")]
    ShutDown,
}

impl CoordinatorError {
    /// A stable name for the kind of error (for JSON output and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoTransport(_) => "NoTransport",
            Self::NotConnected(_) => "NotConnected",
            Self::Disconnected(_) => "Disconnected",
            Self::AllRoutesFailed { .. } => "AllRoutesFailed",
            Self::NoRoutes => "NoRoutes",
            Self::MessageTooLarge { .. } => "MessageTooLarge",
            Self::WindowTimeout { .. } => "WindowTimeout",
            Self::TooManyPeers(_) => "TooManyPeers",
            Self::Transport(e) => e.kind(),
            Self::NoTransports => "NoTransports",
            Self::MixedIdentities => "MixedIdentities",
            Self::ShutDown => "ShutDown",
        }
    }
}
