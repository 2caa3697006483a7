//! The live links of a transport or mesh node and their per-link statistics ([`LinkStats`]).
//!
//! An entry is added when a link's stream is built and removed by a small task when the link
//! goes down (that task also keeps the link's adapter alive until then), so the table never holds more than the adapter's live links. The lock is taken
//! on link up/down and when statistics are read, never per message.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::link::{BleAdapter, DeviceId, LinkWatch, Role};
use crate::stream::{StreamCounters, StreamStats};

/// Statistics of one live link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkStats {
    /// The device at the other end.
    pub remote: DeviceId,
    /// Our role on the link.
    pub role: Role,
    /// The remote's signal strength in dBm when it was discovered, where known.
    pub rssi: Option<i16>,
    /// The negotiated ATT MTU.
    pub mtu: u16,
    /// Bytes, fragments and messages each way, and reassembly drops by reason.
    pub traffic: StreamStats,
}

#[derive(Debug)]
struct Entry {
    watch: LinkWatch,
    rssi: Option<i16>,
    counters: Arc<StreamCounters>,
}

#[derive(Debug, Default)]
struct Inner {
    next: AtomicU64,
    links: Mutex<BTreeMap<u64, Entry>>,
}

/// The live links of one transport or mesh node. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct LinkRegistry(Arc<Inner>);

impl LinkRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.0
            .links
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a link until it goes down.
    pub(crate) fn register(
        &self,
        watch: LinkWatch,
        rssi: Option<i16>,
        counters: Arc<StreamCounters>,
        adapter: Arc<dyn BleAdapter>,
    ) {
        let id = self.0.next.fetch_add(1, Ordering::Relaxed);
        let down = watch.clone();
        self.lock().insert(
            id,
            Entry {
                watch,
                rssi,
                counters,
            },
        );
        let registry = self.clone();
        // The adapter lives as long as its links (a simulated device would leave the medium,
        // and take the link with it, when the transport that made it is dropped).
        tokio::spawn(async move {
            down.down().await;
            registry.lock().remove(&id);
            drop(adapter);
        });
    }

    /// A snapshot of every live link.
    pub(crate) fn snapshot(&self) -> Vec<LinkStats> {
        self.lock()
            .values()
            .filter(|e| e.watch.down_reason().is_none())
            .map(|e| {
                let info = e.watch.info();
                LinkStats {
                    remote: info.remote().clone(),
                    role: info.role(),
                    rssi: e.rssi,
                    mtu: info.mtu(),
                    traffic: e.counters.snapshot(),
                }
            })
            .collect()
    }
}
