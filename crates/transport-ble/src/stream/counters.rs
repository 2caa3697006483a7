//! Lock-free traffic counters of one link's stream, shared by its two halves and readable from
//! anywhere (the mesh's statistics) while the halves are owned by a connection driver.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::fragment::DropStats;

/// Counters of one [`BleStream`](crate::BleStream), updated with relaxed atomics (no lock).
#[derive(Debug, Default)]
pub struct StreamCounters {
    messages_out: AtomicU64,
    fragments_out: AtomicU64,
    bytes_out: AtomicU64,
    messages_in: AtomicU64,
    fragments_in: AtomicU64,
    bytes_in: AtomicU64,
    malformed: AtomicU64,
    inconsistent: AtomicU64,
    too_many_fragments: AtomicU64,
    too_large: AtomicU64,
    evicted: AtomicU64,
    expired: AtomicU64,
}

/// A snapshot of a [`StreamCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Link messages queued for sending (one per write, plus the end of stream).
    pub messages_out: u64,
    /// Fragments (ATT payloads) queued for sending.
    pub fragments_out: u64,
    /// Stream bytes queued for sending (fragment headers excluded).
    pub bytes_out: u64,
    /// Link messages reassembled.
    pub messages_in: u64,
    /// Fragments received.
    pub fragments_in: u64,
    /// Stream bytes reassembled.
    pub bytes_in: u64,
    /// Reassembly drops, by reason.
    pub drops: DropStats,
}

fn add(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl StreamCounters {
    pub(crate) fn sent_message(&self, bytes: usize, fragments: u16) {
        add(&self.messages_out, 1);
        add(&self.bytes_out, bytes as u64);
        add(&self.fragments_out, u64::from(fragments));
    }

    pub(crate) fn received_fragment(&self) {
        add(&self.fragments_in, 1);
    }

    pub(crate) fn received_message(&self, bytes: usize) {
        add(&self.messages_in, 1);
        add(&self.bytes_in, bytes as u64);
    }

    /// Publishes the reassembler's drop counters (they only ever grow).
    pub(crate) fn set_drops(&self, drops: &DropStats) {
        let set = |c: &AtomicU64, v: u64| c.store(v, Ordering::Relaxed);
        set(&self.malformed, drops.malformed);
        set(&self.inconsistent, drops.inconsistent);
        set(&self.too_many_fragments, drops.too_many_fragments);
        set(&self.too_large, drops.too_large);
        set(&self.evicted, drops.evicted);
        set(&self.expired, drops.expired);
    }

    /// A snapshot.
    pub fn snapshot(&self) -> StreamStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StreamStats {
            messages_out: get(&self.messages_out),
            fragments_out: get(&self.fragments_out),
            bytes_out: get(&self.bytes_out),
            messages_in: get(&self.messages_in),
            fragments_in: get(&self.fragments_in),
            bytes_in: get(&self.bytes_in),
            drops: DropStats {
                malformed: get(&self.malformed),
                inconsistent: get(&self.inconsistent),
                too_many_fragments: get(&self.too_many_fragments),
                too_large: get(&self.too_large),
                evicted: get(&self.evicted),
                expired: get(&self.expired),
            },
        }
    }
}
