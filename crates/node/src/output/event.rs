//! [`Event`]: everything the node reports, with the constructors that turn transport and
//! coordinator values into events, and the `kind` names of typed errors.

use std::time::Duration;

use bitcraps_coordinator::{BreakerState, CoordinatorError, DiscoverySource, TransportStats};
use bitcraps_transport_core::{Error, ListenerStats, PeerId, TransportAddress, TransportKind};
use serde::Serialize;

/// Characters of a message's text shown in a `message` event.
const TEXT_CHARS: usize = 64;
/// Bytes of a message inspected for its text (64 chars of UTF-8 fit in 256 bytes).
const TEXT_BYTES: usize = TEXT_CHARS * 4;

/// One thing the node reports. Serialized with an `event` tag in snake case.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// `perf` finished: one-way throughput and round trips through one connection.
    Perf {
        transport: String,
        remote: Option<String>,
        size: usize,
        sent: u64,
        delivered: u64,
        bytes: u64,
        seconds: f64,
        megabytes_per_second: f64,
        messages_per_second: f64,
        rounds: usize,
        rtt_p50_us: Option<f64>,
        rtt_p99_us: Option<f64>,
    },
    /// A listener is bound (with its real port).
    Listening { address: String, peer_id: String },
    /// The node's ticket: its peer id and every bound address in one line (`send --ticket`).
    Ticket { peer_id: String, ticket: String },
    /// The mesh takes direct links from neighbours here (`listen --relay`).
    Relaying { address: String, peer_id: String },
    /// A direct mesh link to a neighbour is up (`--mesh-via`).
    MeshLinked { address: String, peer_id: String },
    /// A connection was authenticated.
    Connected { peer_id: String, address: String },
    /// A message arrived.
    Message {
        peer_id: String,
        bytes: usize,
        text: Option<String>,
    },
    /// A peer's session ended.
    Disconnected { peer_id: String, reason: String },
    /// Accepted messages that will never reach the peer's application.
    Undelivered {
        peer_id: String,
        count: usize,
        /// The first ids (at most 16).
        ids: Vec<u64>,
        reason: String,
    },
    /// One connection of a peer was given up (traffic moves to another if there is one).
    LinkFailed {
        peer_id: String,
        address: String,
        reason: String,
    },
    /// Something failed: a refused inbound attempt, a failed connection, a failed dial.
    Error {
        peer_id: Option<String>,
        remote: Option<String>,
        error: String,
        kind: &'static str,
        /// The inner variant (handshake error, protocol error or limit), when there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A `send` run finished: what was sent and how fast.
    Summary {
        peer_id: String,
        messages: u64,
        bytes: u64,
        seconds: f64,
        messages_per_second: f64,
        megabytes_per_second: f64,
    },
    /// A demo participant said something.
    Said {
        peer_id: String,
        name: String,
        text: String,
    },
    /// One demo player's tally at the end of the run.
    PlayerStats {
        name: String,
        peer_id: String,
        transport: String,
        sent: u64,
        acknowledged: u64,
        undelivered: u64,
        received_by_table: u64,
        route_changes: u64,
        rtt_mean_ms: f64,
        rtt_max_ms: f64,
    },
    /// A listener's counters.
    ListenerStats {
        address: String,
        accepted: u64,
        refused_by_limit: u64,
        failed_handshakes: u64,
    },
    /// The metrics endpoint is bound (`listen --metrics`): its scrape URL.
    Metrics { address: String },
    /// The node is shutting down (Ctrl-C).
    ShuttingDown { reason: String },
    /// Traffic to a peer moved to another connection (failover or switch-back).
    RouteChanged {
        peer_id: String,
        from: Option<String>,
        to: String,
    },
    /// A route's circuit breaker changed state (`closed`, `open`, `half_open`).
    Breaker {
        peer_id: String,
        route: String,
        state: &'static str,
        /// While open: milliseconds until a probe is admitted.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u128>,
    },
    /// A listener was closed on request (`close ADDR` on stdin).
    ListenerClosed { address: String },
    /// Events were dropped because the printer fell behind.
    Lagged { missed: u64 },
    /// The coordinator's counters for one transport kind (envelope bytes and packets).
    TransportStats {
        transport: String,
        bytes_sent: u64,
        bytes_received: u64,
        packets_sent: u64,
        packets_received: u64,
        connections: usize,
        errors: u64,
    },
    /// Discovery found a peer (or its routes changed); not proven until a handshake does.
    PeerDiscovered {
        peer_id: String,
        routes: Vec<String>,
        source: &'static str,
    },
    /// A discovered peer is no longer announced (its connections are not touched).
    PeerLost {
        peer_id: String,
        source: &'static str,
    },
    /// A message sent with the `send PEER TEXT` control line reached the peer's application.
    Delivered {
        peer_id: String,
        id: u64,
        bytes: usize,
    },
    /// The coordinator's counters for one peer at exit.
    PeerStats {
        peer_id: String,
        delivered: u64,
        duplicates: u64,
        undelivered: u64,
        bytes_sent: u64,
        bytes_received: u64,
        connections: usize,
    },
}

impl Event {
    /// A `connected` event.
    pub(crate) fn connected(peer: PeerId, address: &TransportAddress) -> Self {
        Self::Connected {
            peer_id: peer.to_string(),
            address: address.to_string(),
        }
    }

    /// A `message` event; the text is the first 64 characters if the message is UTF-8.
    pub(crate) fn message(peer: PeerId, message: &[u8]) -> Self {
        Self::Message {
            peer_id: peer.to_string(),
            bytes: message.len(),
            text: preview(message),
        }
    }

    /// An `error` event for a core error.
    pub(crate) fn error(
        peer: Option<PeerId>,
        remote: Option<&TransportAddress>,
        error: &Error,
    ) -> Self {
        let (kind, detail) = error_kind(error);
        Self::Error {
            peer_id: peer.map(|p| p.to_string()),
            remote: remote.map(|r| r.to_string()),
            error: error.to_string(),
            kind,
            detail,
        }
    }

    /// A `peer_discovered` event.
    pub(crate) fn peer_discovered(
        peer: PeerId,
        routes: &[TransportAddress],
        source: DiscoverySource,
    ) -> Self {
        Self::PeerDiscovered {
            peer_id: peer.to_string(),
            routes: routes.iter().map(ToString::to_string).collect(),
            source: source.as_str(),
        }
    }

    /// A `peer_lost` event.
    pub(crate) fn peer_lost(peer: PeerId, source: DiscoverySource) -> Self {
        Self::PeerLost {
            peer_id: peer.to_string(),
            source: source.as_str(),
        }
    }

    /// A `listener_stats` event.
    pub(crate) fn listener_stats(address: &TransportAddress, stats: ListenerStats) -> Self {
        Self::ListenerStats {
            address: address.to_string(),
            accepted: stats.accepted,
            refused_by_limit: stats.refused_by_limit,
            failed_handshakes: stats.failed_handshakes,
        }
    }

    /// A `route_changed` event.
    pub(crate) fn route_changed(
        peer: PeerId,
        from: Option<&TransportAddress>,
        to: &TransportAddress,
    ) -> Self {
        Self::RouteChanged {
            peer_id: peer.to_string(),
            from: from.map(|f| f.to_string()),
            to: to.to_string(),
        }
    }

    /// A `breaker` event.
    pub(crate) fn breaker(peer: PeerId, route: &TransportAddress, state: BreakerState) -> Self {
        let (state, retry_in_ms) = match state {
            BreakerState::Closed => ("closed", None),
            BreakerState::HalfOpen => ("half_open", None),
            BreakerState::Open { until } => (
                "open",
                Some(
                    until
                        .saturating_duration_since(std::time::Instant::now())
                        .as_millis(),
                ),
            ),
        };
        Self::Breaker {
            peer_id: peer.to_string(),
            route: route.to_string(),
            state,
            retry_in_ms,
        }
    }

    /// An `error` event for a coordinator error (typed by its variant, or by the core error
    /// inside).
    pub(crate) fn coordinator_error(
        peer: Option<PeerId>,
        remote: Option<&TransportAddress>,
        error: &CoordinatorError,
    ) -> Self {
        if let CoordinatorError::Transport(e) = error {
            return Self::error(peer, remote, e);
        }
        Self::Error {
            peer_id: peer.map(|p| p.to_string()),
            remote: remote.map(|r| r.to_string()),
            error: error.to_string(),
            kind: coordinator_error_kind(error),
            detail: None,
        }
    }

    /// A `transport_stats` event.
    pub(crate) fn transport_stats(kind: TransportKind, stats: TransportStats) -> Self {
        Self::TransportStats {
            transport: kind.to_string(),
            bytes_sent: stats.bytes_sent,
            bytes_received: stats.bytes_received,
            packets_sent: stats.packets_sent,
            packets_received: stats.packets_received,
            connections: stats.connection_count,
            errors: stats.error_count,
        }
    }

    /// A `peer_stats` event.
    pub(crate) fn peer_stats(stats: &bitcraps_coordinator::PeerStats) -> Self {
        Self::PeerStats {
            peer_id: stats.peer.to_string(),
            delivered: stats.delivered,
            duplicates: stats.duplicates,
            undelivered: stats.undelivered,
            bytes_sent: stats.traffic.bytes_sent,
            bytes_received: stats.traffic.bytes_received,
            connections: stats.traffic.connection_count,
        }
    }

    /// A `summary` event for `count` messages of `bytes` payload bytes in `elapsed`.
    pub(crate) fn summary(peer: PeerId, count: u64, bytes: u64, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Self::Summary {
            peer_id: peer.to_string(),
            messages: count,
            bytes,
            seconds,
            messages_per_second: count as f64 / seconds,
            megabytes_per_second: bytes as f64 / seconds / 1e6,
        }
    }
}

/// The first [`TEXT_CHARS`] characters of `message` if it is UTF-8 (only a bounded prefix is
/// inspected, so a large message costs nothing extra).
pub(super) fn preview(message: &[u8]) -> Option<String> {
    let head = &message[..message.len().min(TEXT_BYTES)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // Cut in the middle of a character at the end of the prefix: keep what is whole.
        Err(e) if e.error_len().is_none() && head.len() < message.len() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    Some(text.chars().take(TEXT_CHARS).collect())
}

/// The variant name of a core error (`kind`), and the inner variant where there is one (the
/// handshake or protocol error's kind, or the limit), from the core's stable names.
pub(crate) fn error_kind(error: &Error) -> (&'static str, Option<String>) {
    use bitcraps_transport_core::ProtocolError as P;
    let kind = match error {
        Error::Protocol(P::MessageTooLarge { .. }) => "IncomingMessageTooLarge",
        Error::Protocol(p) => p.kind(),
        e => e.kind(),
    };
    (kind, error.detail().map(str::to_owned))
}

/// The variant name of a coordinator error (`kind`; the core error's inside `Transport`).
pub(crate) fn coordinator_error_kind(error: &CoordinatorError) -> &'static str {
    match error {
        CoordinatorError::Transport(e) => error_kind(e).0,
        e => e.kind(),
    }
}
