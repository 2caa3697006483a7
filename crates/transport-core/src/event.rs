//! [`TransportEvent`]: what happened on a transport, for applications that prefer a stream of
//! events to driving connections themselves.

use bytes::Bytes;

use crate::{CloseReason, Error, PeerId, TransportAddress};

/// Something that happened to a connection. The seed's four events; payloads are `Bytes` so
/// fanning an event out never copies.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TransportEvent {
    /// A connection to `peer_id` was established (and authenticated).
    Connected {
        /// The proven identity.
        peer_id: PeerId,
        /// The remote's address.
        address: TransportAddress,
    },
    /// The connection to `peer_id` ended.
    Disconnected {
        /// The peer.
        peer_id: PeerId,
        /// Why.
        reason: CloseReason,
    },
    /// A message arrived.
    DataReceived {
        /// The sender.
        peer_id: PeerId,
        /// The message.
        data: Bytes,
    },
    /// Something failed; `peer_id` when it concerns one peer.
    Error {
        /// The peer concerned, if any.
        peer_id: Option<PeerId>,
        /// The error.
        error: Error,
    },
}
