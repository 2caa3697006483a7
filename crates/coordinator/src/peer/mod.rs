//! One peer, as the API sees it: the handle the coordinator keeps ([`PeerHandle`]), the
//! cheap [`PeerSender`] applications send with, delivery [`Receipt`]s, and the commands the
//! peer's actor takes. The actor itself (`actor`, `io`) is a thin async shell around the
//! peer's [`PeerMachine`](crate::machine::PeerMachine).
//!
//! The send window is a pair of semaphores: `send` takes a permit per message (and one per
//! payload byte) before it queues the message; the machine hands them back when the message
//! finishes (acknowledged, or reported undelivered). No lock is held across an `.await`.

mod actor;
mod conns;
mod io;
mod notify;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bitcraps_transport_core::{AdmissionGuard, Bytes, Connection, PeerId, TransportAddress};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::{CoordinatorError, Result};
use crate::machine::{DisconnectReason, LocalReason, MessageId, UndeliveredReason};
use crate::policy::Priority;
use crate::stats::{Counters, PeerConnections};
use crate::Shared;

pub(crate) use actor::spawn_peer;
pub(crate) use io::clock as now;

/// Connections whose final close did not complete cleanly, with the transport's error.
pub(crate) type Unclean = Vec<(TransportAddress, bitcraps_transport_core::Error)>;

/// What a receipt resolves to.
pub(crate) type Outcome = std::result::Result<(), UndeliveredReason>;

/// A message waiting for the actor.
#[derive(Debug)]
pub(crate) struct SendRequest {
    pub(crate) id: MessageId,
    pub(crate) payload: Bytes,
    pub(crate) priority: Priority,
    pub(crate) receipt: Option<oneshot::Sender<Outcome>>,
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
    Flush(oneshot::Sender<()>),
    /// Ends the session; `done` hears, once every connection's close finished, the ones that
    /// did not close cleanly.
    Disconnect {
        reason: LocalReason,
        done: Option<oneshot::Sender<Unclean>>,
    },
    ListenerClosed(u64),
}

/// What the API holds for one peer.
#[derive(Debug)]
pub(crate) struct PeerHandle {
    pub(crate) peer: PeerId,
    pub(crate) ctl: mpsc::Sender<Ctl>,
    pub(crate) data: mpsc::Sender<SendRequest>,
    pub(crate) window: Semaphore,
    pub(crate) window_bytes: Semaphore,
    pub(crate) counters: Counters,
    pub(crate) view: Mutex<PeerConnections>,
    pub(crate) next_id: AtomicU64,
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

    /// Queues `payload` for the peer at `priority` and returns its id. Waits (at most
    /// `send_timeout`) while the peer's window of unfinished messages is full. From `Ok` on,
    /// the message ends in exactly one of two ways: the remote application receives it (once),
    /// or it is reported in an [`Undelivered`](crate::CoordinatorEvent::Undelivered) event with
    /// its id and the reason. See the crate docs.
    pub async fn send(&self, payload: Bytes, priority: Priority) -> Result<MessageId> {
        self.enqueue(payload, priority, None).await
    }

    /// Like [`send`](Self::send), and returns a [`Receipt`] that resolves once the remote
    /// application has the message, or with the reason it never will.
    pub async fn send_with_receipt(&self, payload: Bytes, priority: Priority) -> Result<Receipt> {
        let (tx, rx) = oneshot::channel();
        let id = self.enqueue(payload, priority, Some(tx)).await?;
        Ok(Receipt { id, rx })
    }

    async fn enqueue(
        &self,
        payload: Bytes,
        priority: Priority,
        receipt: Option<oneshot::Sender<Outcome>>,
    ) -> Result<MessageId> {
        let config = &self.shared.config;
        let max = self.shared.max_payload;
        if payload.len() > max {
            return Err(CoordinatorError::MessageTooLarge {
                len: payload.len(),
                max,
            });
        }
        let peer = self.handle.peer;
        let len = payload.len() as u32;
        // Fast path: room in the window now (no future, no timer).
        if let Ok(m) = self.handle.window.try_acquire() {
            match self.handle.window_bytes.try_acquire_many(len) {
                Ok(b) => {
                    m.forget();
                    b.forget();
                    return self.queue(payload, priority, receipt).await;
                }
                Err(_) => drop(m),
            }
        }
        let acquire = async {
            let m = self.handle.window.acquire().await?;
            let b = self.handle.window_bytes.acquire_many(len).await?;
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
        self.queue(payload, priority, receipt).await
    }

    /// Queues a message whose window permits are taken.
    async fn queue(
        &self,
        payload: Bytes,
        priority: Priority,
        receipt: Option<oneshot::Sender<Outcome>>,
    ) -> Result<MessageId> {
        let peer = self.handle.peer;
        let id = MessageId(self.handle.next_id.fetch_add(1, Ordering::Relaxed));
        // The window bounds what is unfinished and the queue holds as many items as the
        // window, so this never waits in practice.
        self.handle
            .data
            .send(SendRequest {
                id,
                payload,
                priority,
                receipt,
            })
            .await
            .map_err(|_| CoordinatorError::Disconnected(peer))?;
        Ok(id)
    }
}

/// Resolves once the remote application has one message (`Ok`), or with the reason it never
/// will. Dropping it costs nothing and changes nothing about the message.
#[derive(Debug)]
pub struct Receipt {
    id: MessageId,
    rx: oneshot::Receiver<Outcome>,
}

impl Receipt {
    /// The message's id.
    pub fn id(&self) -> MessageId {
        self.id
    }
}

impl Future for Receipt {
    type Output = std::result::Result<(), UndeliveredReason>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or(Err(UndeliveredReason::SessionEnded(
                DisconnectReason::Local(LocalReason::Dropped),
            )))
        })
    }
}
