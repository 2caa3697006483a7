//! One peer: the handle the API uses ([`PeerHandle`], [`PeerSender`]), the actor task that
//! owns the peer's routes, connections, queues and timers (`actor`, `links`), the reader task
//! of each connection (`reader`) and the delivery task that dedups, rate-limits and hands
//! messages to the application (`delivery`).
//!
//! No lock is held across an `.await`: the actor owns its state outright; the API talks to it
//! through bounded queues, and the send window is a pair of semaphores.

mod actor;
mod delivery;
mod health;
mod links;
mod reader;
mod routes;

use std::sync::{Arc, Mutex};

use bitcraps_transport_core::{
    AdmissionGuard, Bytes, Connection, PeerId, Result as CoreResult, TransportAddress,
};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::envelope::AckIds;
use crate::error::{CoordinatorError, Result};
use crate::event::DisconnectReason;
use crate::policy::Priority;
use crate::stats::{Counters, PeerConnections};
use crate::Shared;

pub(crate) use actor::spawn_peer;

/// A message waiting for the actor.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) payload: Bytes,
    pub(crate) priority: Priority,
}

/// A control envelope a reader hands to the actor.
#[derive(Debug)]
pub(crate) enum Control {
    Ack(AckIds),
    Ping(u64),
    Pong(u64),
}

/// Why a reader stopped.
#[derive(Debug)]
pub(crate) enum LinkEnd {
    /// The connection closed or failed.
    Closed(bitcraps_transport_core::CloseReason),
    /// The remote sent a malformed envelope.
    Protocol(String),
}

/// Commands to a peer's actor.
#[derive(Debug)]
pub(crate) enum Ctl {
    Connect {
        routes: Vec<TransportAddress>,
        reply: oneshot::Sender<Result<()>>,
    },
    Attach {
        conn: Connection,
        guard: AdmissionGuard,
        transport: usize,
        listener: Option<u64>,
    },
    Dialed {
        route: usize,
        result: CoreResult<(Connection, AdmissionGuard)>,
    },
    Received {
        link: u64,
        control: Control,
    },
    LinkEnded {
        link: u64,
        end: LinkEnd,
    },
    Acks(Vec<u64>),
    Flood,
    Flush(oneshot::Sender<()>),
    Disconnect(DisconnectReason),
    ListenerClosed(u64),
}

/// What the API holds for one peer.
#[derive(Debug)]
pub(crate) struct PeerHandle {
    pub(crate) peer: PeerId,
    pub(crate) ctl: mpsc::Sender<Ctl>,
    pub(crate) data: mpsc::Sender<Outbound>,
    pub(crate) window: Semaphore,
    pub(crate) window_bytes: Semaphore,
    pub(crate) counters: Counters,
    pub(crate) view: Mutex<PeerConnections>,
}

impl PeerHandle {
    pub(crate) fn view(&self) -> PeerConnections {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_view(&self, view: PeerConnections) {
        *self.view.lock().unwrap_or_else(|p| p.into_inner()) = view;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.ctl.is_closed()
    }
}

/// A cheap handle for sending to one peer without looking it up each time (the hot path:
/// no lock per message). Obtain it with
/// [`TransportCoordinator::peer_sender`](crate::TransportCoordinator::peer_sender).
#[derive(Debug, Clone)]
pub struct PeerSender {
    pub(crate) handle: Arc<PeerHandle>,
    pub(crate) shared: Arc<Shared>,
}

impl PeerSender {
    /// The peer.
    pub fn peer(&self) -> PeerId {
        self.handle.peer
    }

    /// Queues `payload` for the peer at `priority`. Waits (at most `send_timeout`) while the
    /// peer's window of unacknowledged messages is full. Returns once the message is in the
    /// window: from then on it is delivered at least once on the wire (and exactly once to
    /// the remote application) unless the peer is disconnected. See the crate docs.
    pub async fn send(&self, payload: Bytes, priority: Priority) -> Result<()> {
        let config = &self.shared.config;
        if payload.len() > self.shared.max_payload {
            return Err(CoordinatorError::MessageTooLarge {
                len: payload.len(),
                max: self.shared.max_payload,
            });
        }
        let peer = self.handle.peer;
        let cost = byte_cost(payload.len(), config.max_unacked_bytes);
        let acquire = async {
            let m = self.handle.window.acquire().await?;
            let b = self.handle.window_bytes.acquire_many(cost).await?;
            m.forget();
            b.forget();
            Ok::<_, tokio::sync::AcquireError>(())
        };
        match tokio::time::timeout(config.send_timeout, acquire).await {
            Err(_) => {
                return Err(CoordinatorError::WindowTimeout {
                    peer,
                    after: config.send_timeout,
                })
            }
            Ok(Err(_)) => return Err(CoordinatorError::Disconnected(peer)),
            Ok(Ok(())) => {}
        }
        // The window bounds what is in flight, and the queue holds as many items as the
        // window, so this never waits in practice.
        self.handle
            .data
            .send(Outbound { payload, priority })
            .await
            .map_err(|_| CoordinatorError::Disconnected(peer))
    }
}

/// Bytes of window a payload takes (at least 0, at most the whole window).
pub(crate) fn byte_cost(len: usize, max: usize) -> u32 {
    len.min(max).min(u32::MAX as usize) as u32
}
