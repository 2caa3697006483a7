//! [`SharedLimiter`]: the async shells' handle on one [`ConnectionLimiter`], shared by a
//! transport's listeners and dials (or by several transports).
//!
//! The lock is a plain mutex held for a few arithmetic operations, never across an `.await`.
//! Time comes from `tokio::time::Instant`, so tests under `tokio::time::pause` control it.
//! Tickets and guards are RAII: a handshake ticket dropped without `succeed` counts as a
//! failed handshake, and an admission guard releases its slot when the connection ends.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::policy::{ConnectionLimiter, ConnectionLimits, Direction, LimitRejection, SourceKey};
use crate::{Error, PeerId, TransportAddress};

/// A [`ConnectionLimiter`] behind a mutex, with RAII tickets.
#[derive(Clone)]
pub struct SharedLimiter {
    inner: Arc<Mutex<ConnectionLimiter>>,
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.snapshot();
        f.debug_struct("SharedLimiter")
            .field("active", &snapshot.active_connections)
            .field("in_flight", &snapshot.handshakes_in_flight)
            .finish()
    }
}

/// A moment's view of a limiter's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterSnapshot {
    /// Admitted connections open now.
    pub active_connections: usize,
    /// Inbound handshakes running now.
    pub handshakes_in_flight: usize,
    /// Inbound sources remembered (bounded).
    pub tracked_sources: usize,
    /// Outbound destinations remembered (bounded).
    pub tracked_destinations: usize,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl SharedLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            inner: Arc::new(Mutex::new(ConnectionLimiter::new(limits))),
        }
    }

    /// A limiter with every limit effectively off (tests, benchmarks).
    pub fn unlimited() -> Self {
        Self::new(ConnectionLimits::unlimited())
    }

    fn lock(&self) -> MutexGuard<'_, ConnectionLimiter> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the limiter (for inspection or custom policies).
    pub fn with<R>(&self, f: impl FnOnce(&mut ConnectionLimiter) -> R) -> R {
        f(&mut self.lock())
    }

    /// The counters now.
    pub fn snapshot(&self) -> LimiterSnapshot {
        let l = self.lock();
        LimiterSnapshot {
            active_connections: l.active_connections(),
            handshakes_in_flight: l.handshakes_in_flight(),
            tracked_sources: l.tracked_sources(),
            tracked_destinations: l.tracked_destinations(),
        }
    }

    /// Checks an inbound attempt from `source` before its handshake.
    pub fn check_inbound(&self, source: SourceKey) -> Result<InboundTicket, LimitRejection> {
        self.lock().check_inbound(source, now())?;
        Ok(InboundTicket {
            limiter: self.clone(),
            source,
            done: false,
        })
    }

    /// Checks a dial to `dest` before it starts.
    pub fn check_outbound(
        &self,
        dest: &TransportAddress,
    ) -> Result<OutboundTicket, LimitRejection> {
        self.lock().check_outbound(dest, now())?;
        Ok(OutboundTicket {
            limiter: self.clone(),
            dest: dest.clone(),
            done: false,
        })
    }

    /// Runs one dial to `dest` under the outbound limits: refused at once (`Error::Limit`) while
    /// `dest` is backing off; `attempt` bounded by `timeout` (`Error::Timeout` naming
    /// `operation`); a failure other than a limit refusal backs off later dials to `dest`.
    pub async fn guard_dial<T>(
        &self,
        dest: &TransportAddress,
        timeout: Duration,
        operation: &'static str,
        attempt: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let ticket = self.check_outbound(dest).map_err(Error::Limit)?;
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                operation,
                after: timeout,
            }),
        };
        match &result {
            Ok(_) | Err(Error::Limit(_) | Error::RemoteLimit(_)) => ticket.succeed(),
            Err(_) => drop(ticket),
        }
        result
    }

    /// Admits an authenticated connection to `peer`; the slot is held until the guard drops.
    pub fn admit(
        &self,
        peer: PeerId,
        direction: Direction,
    ) -> Result<AdmissionGuard, LimitRejection> {
        self.lock().admit(peer, direction)?;
        Ok(AdmissionGuard {
            limiter: self.clone(),
            peer,
        })
    }
}

/// An inbound handshake in flight. Drop it without [`InboundTicket::succeed`] to record a
/// failure (which puts the source in cooldown).
#[derive(Debug)]
pub struct InboundTicket {
    limiter: SharedLimiter,
    source: SourceKey,
    done: bool,
}

impl InboundTicket {
    /// The handshake succeeded.
    pub fn succeed(mut self) {
        self.done = true;
        self.limiter
            .lock()
            .inbound_handshake_done(self.source, true, now());
    }
}

impl Drop for InboundTicket {
    fn drop(&mut self) {
        if !self.done {
            self.limiter
                .lock()
                .inbound_handshake_done(self.source, false, now());
        }
    }
}

/// A dial in progress. Drop it without [`OutboundTicket::succeed`] to record a failure (which
/// backs off further dials to the same address).
#[derive(Debug)]
pub struct OutboundTicket {
    limiter: SharedLimiter,
    dest: TransportAddress,
    done: bool,
}

impl OutboundTicket {
    /// The dial succeeded (or ended for a reason that is not the address's fault).
    pub fn succeed(mut self) {
        self.done = true;
        self.limiter.lock().outbound_done(&self.dest, true, now());
    }
}

impl Drop for OutboundTicket {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.lock().outbound_done(&self.dest, false, now());
        }
    }
}

/// An admitted connection's slot; released on drop.
#[derive(Debug)]
pub struct AdmissionGuard {
    limiter: SharedLimiter,
    peer: PeerId,
}

impl Drop for AdmissionGuard {
    fn drop(&mut self) {
        self.limiter.lock().release(self.peer);
    }
}
