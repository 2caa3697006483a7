//! Plumbing every listener shares, whatever its backend: the counters behind
//! [`Listener::stats`](crate::Listener::stats) and the one way an inbound handshake's outcome is
//! handed to the application ([`finish_inbound`]), so refusals are counted, logged, reported and
//! charged to the source the same way on every backend.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::{Connection, Error, Inbound, InboundTicket, ListenerStats, TransportAddress};

/// The counters of one listener (atomics: shared by its accept loop and handshake tasks).
#[derive(Debug, Default)]
pub struct ListenerCounters {
    accepted: AtomicU64,
    refused_by_limit: AtomicU64,
    failed_handshakes: AtomicU64,
}

impl ListenerCounters {
    /// Counts a connection handed to the application.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an attempt refused by a limit.
    pub fn refused_by_limit(&self) {
        self.refused_by_limit.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a handshake that failed or timed out.
    pub fn failed_handshake(&self) {
        self.failed_handshakes.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn stats(&self) -> ListenerStats {
        ListenerStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            refused_by_limit: self.refused_by_limit.load(Ordering::Relaxed),
            failed_handshakes: self.failed_handshakes.load(Ordering::Relaxed),
        }
    }
}

/// Hands the outcome of one inbound handshake to the application through `tx`.
///
/// - A connection is delivered with backpressure, and the `ticket` (an in-flight slot) is held
///   until the application takes it, so undelivered connections stay bounded too.
/// - A limit refusal after authentication (per peer, total) is not the source's fault: the
///   ticket succeeds.
/// - Any other failure (garbage, timeout, bad signature) drops the ticket, which puts the source
///   in its failure cooldown.
///
/// Refusals are logged and reported as [`Inbound::Refused`], dropped rather than queued when the
/// application is not reading them fast enough.
pub async fn finish_inbound(
    result: Result<Connection, Error>,
    remote: TransportAddress,
    ticket: InboundTicket,
    tx: &mpsc::Sender<Inbound>,
    counters: &ListenerCounters,
) {
    match result {
        Ok(connection) => {
            if tx.send(Inbound::Connection(connection)).await.is_ok() {
                counters.accepted();
            }
            ticket.succeed();
        }
        Err(error) => {
            if matches!(error, Error::Limit(_)) {
                counters.refused_by_limit();
                ticket.succeed();
            } else {
                counters.failed_handshake();
                drop(ticket);
            }
            tracing::info!(%remote, %error, "inbound connection refused");
            let _ = tx.try_send(Inbound::Refused { remote, error });
        }
    }
}
