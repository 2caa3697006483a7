//! [`Shared`]: the state every task of one coordinator shares. The peer table and listener
//! table sit behind plain mutexes held for a lookup or an insert, never across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bitcraps_transport_core::{ListenerStats, PeerId, SharedLimiter, Transport, TransportAddress};
use tokio::sync::oneshot;

use crate::error::{CoordinatorError, Result};
use crate::event::{EventSink, EventStream};
use crate::machine::RecvSnapshot;
use crate::peer::{spawn_peer, PeerHandle};
use crate::policy::{BreakerState, CircuitBreaker};
use crate::stats::Counters;
use crate::CoordinatorConfig;

pub(crate) struct ListenerEntry {
    pub(crate) addr: TransportAddress,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) task: Option<tokio::task::JoinHandle<()>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything one coordinator's tasks share.
pub(crate) struct Shared {
    pub(crate) config: CoordinatorConfig,
    pub(crate) transports: Vec<Arc<dyn Transport>>,
    pub(crate) transport_counters: Vec<Arc<Counters>>,
    /// The message counters of every peer session that ended (for the totals).
    pub(crate) ended: Counters,
    pub(crate) events: EventSink,
    pub(crate) events_rx: Mutex<Option<EventStream>>,
    pub(crate) limiter: SharedLimiter,
    pub(crate) peers: Mutex<HashMap<PeerId, Arc<PeerHandle>>>,
    pub(crate) listeners: Mutex<HashMap<u64, ListenerEntry>>,
    /// The latest counters of every listener opened (kept after it closed; capped).
    pub(crate) listener_stats: Mutex<Vec<(u64, TransportAddress, ListenerStats)>>,
    pub(crate) max_payload: usize,
    pub(crate) closed: AtomicBool,
    /// Breakers of routes whose peer has no actor now, so a route's history outlives it.
    breakers: Mutex<HashMap<TransportAddress, (CircuitBreaker, BreakerState)>>,
    /// Receive state of sessions whose state machine ended without a goodbye, with when it
    /// was kept, so a resumed session is deduped (capped; expires after `session_ttl`).
    tombstones: Mutex<HashMap<PeerId, (RecvSnapshot, std::time::Instant)>>,
    ids: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field(
                "transports",
                &self.transports.iter().map(|t| t.kind()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(transports: Vec<Arc<dyn Transport>>, config: CoordinatorConfig) -> Self {
        let (events, events_rx) = EventSink::new(config.event_queue);
        let max_payload = transports
            .iter()
            .map(|t| t.capabilities().max_message_size)
            .min()
            .unwrap_or(0)
            .saturating_sub(crate::envelope::DATA_HEADER)
            .min(config.max_unacked_bytes)
            .min(config.recv_window_bytes as usize);
        Self {
            transport_counters: transports.iter().map(|_| Arc::default()).collect(),
            ended: Counters::default(),
            limiter: SharedLimiter::new(config.limits.clone()),
            config,
            transports,
            events,
            events_rx: Mutex::new(Some(events_rx)),
            peers: Mutex::default(),
            listeners: Mutex::default(),
            listener_stats: Mutex::default(),
            max_payload,
            closed: AtomicBool::new(false),
            breakers: Mutex::default(),
            tombstones: Mutex::default(),
            ids: AtomicU64::new(1),
        }
    }

    /// The index of the first transport that serves `addr`.
    pub(crate) fn transport_for(&self, addr: &TransportAddress) -> Option<usize> {
        self.transports.iter().position(|t| t.supports(addr))
    }

    /// A fresh id (links, listeners).
    pub(crate) fn next_link_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// A seed for a breaker's jitter.
    pub(crate) fn seed(&self) -> u64 {
        self.next_link_id().wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn peer(&self, peer: &PeerId) -> Option<Arc<PeerHandle>> {
        lock(&self.peers)
            .get(peer)
            .filter(|h| !h.is_closed())
            .cloned()
    }

    /// The breaker of route `addr`: the one kept from an earlier session, or a new one.
    pub(crate) fn take_breaker(&self, addr: &TransportAddress) -> (CircuitBreaker, BreakerState) {
        lock(&self.breakers).remove(addr).unwrap_or_else(|| {
            (
                CircuitBreaker::new(self.config.breaker, self.seed()),
                BreakerState::Closed,
            )
        })
    }

    /// Keeps a route's breaker for a later session (the table is capped).
    pub(crate) fn keep_breaker(
        &self,
        addr: TransportAddress,
        breaker: (CircuitBreaker, BreakerState),
    ) {
        let mut table = lock(&self.breakers);
        let cap = self.config.max_peers.saturating_mul(4);
        if table.len() >= cap {
            if let Some(victim) = table.keys().next().cloned() {
                table.remove(&victim);
            }
        }
        table.insert(addr, breaker);
    }

    /// Records listener `id`'s counters (the table keeps the newest 64 listeners).
    pub(crate) fn record_listener(&self, id: u64, addr: &TransportAddress, stats: ListenerStats) {
        let mut table = lock(&self.listener_stats);
        match table.iter_mut().find(|(i, _, _)| *i == id) {
            Some(entry) => entry.2 = stats,
            None => {
                if table.len() >= 64 {
                    table.remove(0);
                }
                table.push((id, addr.clone(), stats));
            }
        }
    }

    /// The receive state kept for `peer`'s last session, if not expired.
    pub(crate) fn take_tombstone(&self, peer: &PeerId) -> Option<RecvSnapshot> {
        let now = crate::peer::now();
        let (snap, at) = lock(&self.tombstones).remove(peer)?;
        (now.saturating_duration_since(at) < self.config.session_ttl).then_some(snap)
    }

    /// Keeps `peer`'s receive state (capped: expired entries go first, then the oldest).
    pub(crate) fn keep_tombstone(&self, peer: PeerId, snap: RecvSnapshot) {
        let now = crate::peer::now();
        let ttl = self.config.session_ttl;
        let mut table = lock(&self.tombstones);
        let cap = self.config.max_peers.saturating_mul(4);
        if table.len() >= cap {
            table.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
        }
        if table.len() >= cap {
            if let Some(oldest) = table.iter().min_by_key(|(_, (_, at))| *at).map(|(p, _)| *p) {
                table.remove(&oldest);
            }
        }
        table.insert(peer, (snap, now));
    }

    /// The peer's handle, starting its actor if it has none (or a stopped one).
    pub(crate) fn get_or_spawn(self: &Arc<Self>, peer: PeerId) -> Result<Arc<PeerHandle>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(CoordinatorError::ShutDown);
        }
        let mut peers = lock(&self.peers);
        if let Some(h) = peers.get(&peer).filter(|h| !h.is_closed()) {
            return Ok(h.clone());
        }
        peers.retain(|_, h| !h.is_closed());
        if peers.len() >= self.config.max_peers {
            return Err(CoordinatorError::TooManyPeers(self.config.max_peers));
        }
        let handle = spawn_peer(self, peer);
        peers.insert(peer, handle.clone());
        Ok(handle)
    }

    /// Forgets `handle` if it is still the peer's current one.
    pub(crate) fn remove_peer(&self, handle: &Arc<PeerHandle>) {
        let mut peers = lock(&self.peers);
        if peers
            .get(&handle.peer)
            .is_some_and(|h| Arc::ptr_eq(h, handle))
        {
            peers.remove(&handle.peer);
        }
    }

    /// Every live peer's handle.
    pub(crate) fn handles(&self) -> Vec<Arc<PeerHandle>> {
        lock(&self.peers)
            .values()
            .filter(|h| !h.is_closed())
            .cloned()
            .collect()
    }
}
