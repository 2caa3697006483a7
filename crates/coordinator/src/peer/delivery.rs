//! The delivery task of one peer: takes `DATA` from the peer's inbox (fed by every connection
//! of the peer, in arrival order), drops duplicates ([`DedupCache`]) and messages over the
//! receive rate limit (core [`RateLimiter`]), hands the rest to the application as
//! `DataReceived` events (waiting for room: backpressure), and acknowledges every id it
//! consumed through the actor.
//!
//! Rate limit policy: an excess message is dropped, counted (`PeerStats::rate_limited`) and
//! acknowledged (so a misbehaving sender's window does not jam); after
//! `flood_disconnect_after` drops in a row the peer is disconnected.

use std::sync::Arc;

use bitcraps_transport_core::policy::RateLimiter;
use bitcraps_transport_core::{Bytes, PeerId};
use tokio::sync::mpsc;

use super::{Ctl, PeerHandle};
use crate::event::{CoordinatorEvent, EventSink};
use crate::policy::DedupCache;
use crate::CoordinatorConfig;

/// Ids acknowledged per `Acks` command at most (the actor batches them further).
const ACK_BATCH: usize = 256;
/// Messages taken from the inbox at once.
const BATCH: usize = 64;

pub(crate) struct Delivery {
    pub(crate) peer: PeerId,
    pub(crate) inbox: mpsc::Receiver<(u64, Bytes)>,
    pub(crate) ctl: mpsc::Sender<Ctl>,
    pub(crate) events: EventSink,
    pub(crate) handle: Arc<PeerHandle>,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl Delivery {
    pub(crate) async fn run(mut self, config: &CoordinatorConfig) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut dedup = DedupCache::new(config.max_unacked.saturating_mul(4), config.dedup_ttl);
        let mut limits = config.rate_limits.clone();
        limits.max_keys = 1;
        let mut rate = RateLimiter::new(limits);
        let mut batch = Vec::with_capacity(BATCH);
        let mut acks = Vec::new();
        let mut dropped_in_row = 0u32;
        let counters = &self.handle.counters;
        while self.inbox.recv_many(&mut batch, BATCH).await > 0 {
            for (id, payload) in batch.drain(..) {
                let now = now();
                if !dedup.insert(id, now) {
                    counters.duplicates.fetch_add(1, Relaxed);
                } else if rate.check(&self.peer, payload.len(), now).is_err() {
                    counters.rate_limited.fetch_add(1, Relaxed);
                    dropped_in_row = dropped_in_row.saturating_add(1);
                    if dropped_in_row == config.flood_disconnect_after {
                        let _ = self.ctl.send(Ctl::Flood).await;
                    }
                } else {
                    dropped_in_row = 0;
                    let event = CoordinatorEvent::DataReceived {
                        peer: self.peer,
                        data: payload,
                    };
                    if !self.events.deliver(event).await {
                        return;
                    }
                    counters.delivered.fetch_add(1, Relaxed);
                }
                acks.push(id);
                if acks.len() >= ACK_BATCH
                    && self
                        .ctl
                        .send(Ctl::Acks(std::mem::take(&mut acks)))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            if !acks.is_empty()
                && self
                    .ctl
                    .send(Ctl::Acks(std::mem::take(&mut acks)))
                    .await
                    .is_err()
            {
                return;
            }
        }
    }
}
