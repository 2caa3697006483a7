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
//! - Every other event is dropped when the queue is full, counted, and reported by one
//!   `Lagged { missed }` event as soon as there is room again.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bitcraps_transport_core::{Bytes, CloseReason, PeerId, TransportAddress};
use tokio::sync::mpsc;

use crate::policy::BreakerState;

/// Why a peer was disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer stopped answering health checks.
    HealthCheck {
        /// PINGs missed in a row.
        missed: u32,
        /// The timeout of the last one.
        timeout: Duration,
    },
    /// The last connection ended (closed by the remote, or failed) and no route could
    /// replace it.
    ConnectionLost(CloseReason),
    /// Every route was tried and failed.
    AllRoutesFailed {
        /// The last failure.
        last: String,
    },
    /// The peer exceeded the receive rate limit for too long.
    RateLimitFlood,
    /// No application message either way for the idle timeout.
    Idle,
    /// This side asked (`disconnect` or `shutdown`).
    Local(String),
    /// The remote broke the envelope protocol.
    Protocol(String),
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HealthCheck { missed, timeout } => write!(
                f,
                "health check: {missed} pings unanswered (last timeout {timeout:?})"
            ),
            Self::ConnectionLost(r) => write!(f, "connection lost: {r}"),
            Self::AllRoutesFailed { last } => write!(f, "every route failed (last: {last})"),
            Self::RateLimitFlood => f.write_str("receive rate limit exceeded for too long"),
            Self::Idle => f.write_str("idle"),
            Self::Local(r) => write!(f, "closed locally ({r})"),
            Self::Protocol(r) => write!(f, "protocol violation: {r}"),
        }
    }
}

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
    /// The peer is gone: it has no connection and none could be made. Messages still queued
    /// to it were dropped.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// An application message arrived (exactly once per message id within the dedup window).
    DataReceived {
        /// The sender.
        peer: PeerId,
        /// The message.
        data: Bytes,
    },
    /// Something failed that the caller did not see as a return value.
    Error {
        /// The peer concerned, if any.
        peer: Option<PeerId>,
        /// What failed.
        error: String,
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

    /// A data event: waits for room (backpressure). False if nobody can ever read it.
    pub(crate) async fn deliver(&self, event: CoordinatorEvent) -> bool {
        self.flush_missed();
        self.tx.send(event).await.is_ok()
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
