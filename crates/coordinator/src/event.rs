//! [`CoordinatorEvent`]s and the bounded stream that carries them.
//!
//! One bounded queue (`CoordinatorConfig::event_queue`, default 1,024) carries every event.
//! Two kinds of producers use it differently, so a consumer that stops reading never grows
//! memory and never stalls the coordinator's machinery:
//!
//! - `DataReceived` waits for room: a slow consumer backpressures delivery. The peer's
//!   messages then stay unacknowledged, its window fills, and its `send_to_peer` waits. Health
//!   checks, acks and failover keep running, because connection readers never wait on this
//!   queue (they hand messages to a per-peer inbox whose size the sender's window bounds).
//!   Data never takes the last quarter of the queue, which stays for the other events.
//! - Every other event is dropped when the queue is full, counted, and reported by one
//!   `Lagged { missed }` event as soon as there is room again (`Undelivered` waits a few
//!   seconds for room before it is counted so).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bitcraps_transport_core::{Bytes, Error as CoreError, PeerId, TransportAddress};
use tokio::sync::mpsc;

use crate::machine::{DisconnectReason, LinkFailure, MessageId, UndeliveredReason};
use crate::policy::BreakerState;

/// Something that happened in the coordinator.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CoordinatorEvent {
    /// The first connection to `peer` is up (its identity is proven).
    Connected {
        /// The peer.
        peer: PeerId,
        /// The remote address of that connection.
        address: TransportAddress,
    },
    /// The peer's session ended: it has no connection and none could be made, or one side
    /// ended it. Every message to it that was not acknowledged is reported in an
    /// [`Undelivered`](CoordinatorEvent::Undelivered) event.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// An application message arrived (exactly once per message, in order per priority).
    DataReceived {
        /// The sender.
        peer: PeerId,
        /// The message.
        data: Bytes,
    },
    /// Accepted messages that will never reach the remote application, with their ids and
    /// why. This event waits for room in the stream (a few seconds at most) rather than being
    /// dropped; receipts report the same outcome per message.
    Undelivered {
        /// The peer.
        peer: PeerId,
        /// The messages, in id order.
        ids: Vec<MessageId>,
        /// Why.
        reason: UndeliveredReason,
    },
    /// A dial of one of the peer's routes failed (the peer may still connect over another).
    DialFailed {
        /// The peer.
        peer: PeerId,
        /// The route dialed.
        route: TransportAddress,
        /// The transport's typed error.
        error: CoreError,
    },
    /// A connection of the peer was given up (traffic moves to another, if any).
    LinkFailed {
        /// The peer.
        peer: PeerId,
        /// The connection's remote address.
        address: TransportAddress,
        /// Why.
        failure: LinkFailure,
    },
    /// A listener refused an inbound connection (a limit, a failed handshake, hostile bytes);
    /// it keeps serving everyone else.
    InboundRefused {
        /// The listener's address.
        listener: TransportAddress,
        /// Where the attempt came from.
        remote: TransportAddress,
        /// The typed reason (a transport's error, or a coordinator limit).
        error: crate::CoordinatorError,
    },
    /// Traffic to `peer` moved to another connection (failover or switch-back).
    RouteChanged {
        /// The peer.
        peer: PeerId,
        /// The remote address traffic used before, if any connection was active.
        from: Option<TransportAddress>,
        /// The remote address traffic uses now.
        to: TransportAddress,
    },
    /// A route's circuit breaker changed state.
    Breaker {
        /// The peer the route leads to.
        peer: PeerId,
        /// The route.
        route: TransportAddress,
        /// The new state.
        state: BreakerState,
    },
    /// A discovery service found `peer` (or its routes changed). A hint only: dialing the
    /// routes still proves the peer's identity (see [`crate::discovery`]).
    PeerDiscovered {
        /// The announced peer.
        peer: PeerId,
        /// Its announced routes, most preferred first.
        routes: Vec<TransportAddress>,
        /// Where it was heard.
        source: crate::DiscoverySource,
    },
    /// A peer discovered before is no longer announced (expired, withdrawn or evicted).
    PeerLost {
        /// The peer.
        peer: PeerId,
        /// Where it had been heard.
        source: crate::DiscoverySource,
    },
    /// This many non-data events were dropped because the queue was full.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// The producing side, shared by every task.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    tx: mpsc::Sender<CoordinatorEvent>,
    missed: Arc<AtomicU64>,
}

impl EventSink {
    pub(crate) fn new(capacity: usize) -> (Self, EventStream) {
        let (tx, rx) = mpsc::channel(capacity);
        let missed = Arc::new(AtomicU64::new(0));
        (
            Self {
                tx,
                missed: missed.clone(),
            },
            EventStream { rx, missed },
        )
    }

    fn flush_missed(&self) {
        let missed = self.missed.swap(0, Ordering::AcqRel);
        if missed > 0 {
            if let Err(e) = self.tx.try_send(CoordinatorEvent::Lagged { missed }) {
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    self.missed.fetch_add(missed, Ordering::AcqRel);
                }
            }
        }
    }

    /// A non-data event: never waits; dropped and counted when the queue is full.
    pub(crate) fn emit(&self, event: CoordinatorEvent) {
        self.flush_missed();
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(event) {
            self.missed.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The sending side itself, for producers that reserve room first.
    pub(crate) fn sender(&self) -> mpsc::Sender<CoordinatorEvent> {
        self.tx.clone()
    }

    /// An event that must not be dropped silently: waits for room at most `budget`, then is
    /// counted as missed (reported by `Lagged`).
    pub(crate) async fn deliver_within(&self, event: CoordinatorEvent, budget: Duration) {
        self.flush_missed();
        match tokio::time::timeout(budget, self.tx.send(event)).await {
            Ok(_) => {}
            Err(_) => {
                self.missed.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

/// The consumer side of the coordinator's events: a bounded queue (see the module docs).
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<CoordinatorEvent>,
    missed: Arc<AtomicU64>,
}

impl EventStream {
    /// The next event; `None` once the coordinator is gone. Once the queued events are
    /// read, events that were dropped meanwhile are reported as one `Lagged`.
    pub async fn recv(&mut self) -> Option<CoordinatorEvent> {
        if let Some(event) = self.try_recv() {
            return Some(event);
        }
        self.rx.recv().await
    }

    /// The next event if one is ready now (or a `Lagged` report).
    pub fn try_recv(&mut self) -> Option<CoordinatorEvent> {
        if let Ok(event) = self.rx.try_recv() {
            return Some(event);
        }
        let missed = self.missed.swap(0, Ordering::AcqRel);
        (missed > 0).then_some(CoordinatorEvent::Lagged { missed })
    }

    /// Events waiting now (never more than the configured capacity).
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True if no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

impl futures::Stream for EventStream {
    type Item = CoordinatorEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(event) = self.try_recv() {
            return Poll::Ready(Some(event));
        }
        self.rx.poll_recv(cx)
    }
}
