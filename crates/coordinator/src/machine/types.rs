//! The words the peer state machine speaks: ids, what it asks the shell to do ([`Action`]),
//! and why messages or sessions end.

use std::time::Duration;

use bitcraps_transport_core::{CloseReason, Error as CoreError, TransportAddress};
use bytes::Bytes;

use crate::envelope::{CloseCode, EnvelopeError};
use crate::policy::BreakerState;

/// One connection of a peer, as the state machine knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// One dial the state machine asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DialId(pub u64);

/// An application message accepted by `send_to_peer`: unique per peer of one coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the shell must know about a connection it hands to the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The remote address.
    pub remote: TransportAddress,
    /// The transport promises delivery and order (not UDP datagrams).
    pub reliable: bool,
    /// The largest transport message the connection takes.
    pub max_message: usize,
}

/// Why a dial or a route failed, per route (typed, from the transport).
#[derive(Debug, Clone)]
pub struct RouteFailure {
    /// The route.
    pub route: TransportAddress,
    /// What happened.
    pub error: RouteError,
}

/// What went wrong on one route.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The dial failed with the transport's typed error.
    #[error(transparent)]
    Dial(#[from] CoreError),
    /// The route's circuit breaker refused a dial.
    #[error("circuit breaker open (retry in {retry_after:?})")]
    BreakerOpen {
        /// When it admits a probe again.
        retry_after: Duration,
    },
}

impl std::fmt::Display for RouteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.route, self.error)
    }
}

/// Why a connection of a peer was given up (the peer itself may live on over another).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LinkFailure {
    /// The connection was closed (by either side), as the transport reported it.
    Closed(CloseReason),
    /// Receiving or sending on it failed with the transport's typed error.
    Failed(CoreError),
    /// Probes went unanswered: idle health checks, or a dark route detected while data was
    /// outstanding.
    Unresponsive {
        /// Probes missed in a row.
        missed: u32,
        /// The timeout of the last one.
        timeout: Duration,
    },
}

impl std::fmt::Display for LinkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed(r) => write!(f, "connection ended: {r}"),
            Self::Failed(e) => write!(f, "connection failed: {e}"),
            Self::Unresponsive { missed, timeout } => {
                write!(f, "{missed} probes unanswered (last timeout {timeout:?})")
            }
        }
    }
}

/// This side's reasons to end a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalReason {
    /// `disconnect(peer)`.
    DisconnectRequested,
    /// `shutdown`.
    Shutdown,
    /// The coordinator was dropped.
    Dropped,
}

impl std::fmt::Display for LocalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DisconnectRequested => "disconnect requested",
            Self::Shutdown => "shutdown",
            Self::Dropped => "coordinator dropped",
        })
    }
}

/// Why a peer's session ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// Every route was tried and failed; each route's typed failure is given.
    AllRoutesFailed {
        /// One per route tried, in the order they failed.
        failures: Vec<RouteFailure>,
    },
    /// The peer had no routes (it dialed us), its last connection failed, and it did not come
    /// back within the grace period.
    ConnectionLost(LinkFailure),
    /// The remote ended the session with a `CLOSE`.
    RemoteClosed(CloseCode),
    /// The remote sent more than the window it was granted (flow control violated).
    FlowControl,
    /// The remote broke the envelope protocol.
    Protocol(EnvelopeError),
    /// The remote no longer knows this side's resumed session (it was restarted or forgot
    /// it): what was unacknowledged is reported undelivered.
    SessionLost,
    /// No application message either way for the idle timeout.
    Idle,
    /// This side asked.
    Local(LocalReason),
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AllRoutesFailed { failures } => {
                f.write_str("every route failed")?;
                for (i, r) in failures.iter().enumerate() {
                    write!(f, "{}{r}", if i == 0 { ": " } else { "; " })?;
                }
                Ok(())
            }
            Self::ConnectionLost(l) => write!(f, "connection lost: {l}"),
            Self::RemoteClosed(c) => write!(f, "closed by the remote ({c})"),
            Self::FlowControl => f.write_str("the remote exceeded its flow-control window"),
            Self::Protocol(e) => write!(f, "protocol violation: {e}"),
            Self::SessionLost => f.write_str("the remote no longer knows this session"),
            Self::Idle => f.write_str("idle"),
            Self::Local(r) => write!(f, "closed locally ({r})"),
        }
    }
}

/// Why an accepted message was not delivered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UndeliveredReason {
    /// The peer's session ended before the remote application acknowledged it. If the session
    /// ended while an acknowledgement was on the wire, the remote may hold it nonetheless.
    SessionEnded(DisconnectReason),
}

impl std::fmt::Display for UndeliveredReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SessionEnded(r) => write!(f, "session ended: {r}"),
        }
    }
}

/// So a [`Receipt`](crate::Receipt) can be awaited with `?` in a function returning
/// `Box<dyn Error>` or `anyhow::Result`.
impl std::error::Error for UndeliveredReason {}

/// Something the application should hear about (turned into a `CoordinatorEvent`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Notice {
    /// The first connection is active.
    Connected {
        /// Its remote address.
        address: TransportAddress,
    },
    /// Traffic moved to another connection.
    RouteChanged {
        /// Before.
        from: Option<TransportAddress>,
        /// Now.
        to: TransportAddress,
    },
    /// A route's breaker changed state.
    Breaker {
        /// The route.
        route: TransportAddress,
        /// The new state.
        state: BreakerState,
    },
    /// A dial failed.
    DialFailed {
        /// The route dialed.
        route: TransportAddress,
        /// Why.
        error: CoreError,
    },
    /// A connection was given up.
    LinkFailed {
        /// Its remote address.
        address: TransportAddress,
        /// Why.
        failure: LinkFailure,
    },
}

/// What the state machine asks its shell to do, in order.
#[derive(Debug)]
pub enum Action {
    /// Dial `route` (an index into the routes given to `connect`).
    Dial {
        /// Report the result with this id.
        dial: DialId,
        /// The route's index.
        route: usize,
        /// Its address.
        address: TransportAddress,
    },
    /// Close this connection gracefully (after what was already handed to it).
    Close {
        /// The connection.
        link: LinkId,
        /// Transport messages to write first (a `CLOSE` envelope), if any.
        farewell: Vec<Bytes>,
        /// Why (for the remote's close reason).
        reason: &'static str,
    },
    /// Tell the application.
    Notify(Notice),
    /// A message that asked for a receipt finished.
    Receipt {
        /// The message.
        id: MessageId,
        /// Delivered, or why not.
        outcome: Result<(), UndeliveredReason>,
    },
    /// Messages that did not reach the remote application.
    Undelivered {
        /// Their ids, in order.
        ids: Vec<MessageId>,
        /// Why.
        reason: UndeliveredReason,
    },
    /// This many accepted messages (and payload bytes) finished: room in the send window.
    Release {
        /// Messages.
        messages: usize,
        /// Payload bytes.
        bytes: usize,
    },
    /// The session is over; nothing more will come from this machine.
    Ended(DisconnectReason),
}

/// A message handed to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// 0 interactive, 1 bulk.
    pub lane: u8,
    /// Its sequence number in the lane (for tests and traces).
    pub seq: u64,
    /// The payload.
    pub payload: Bytes,
}
