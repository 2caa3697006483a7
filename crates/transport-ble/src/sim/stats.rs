//! The medium's counters: lock-free while the simulation runs, read as a [`SimStats`]
//! snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use super::radio::SimRadio;

/// Counters of the whole medium (lock-free).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) packets_sent: AtomicU64,
    pub(crate) packets_delivered: AtomicU64,
    pub(crate) retransmissions: AtomicU64,
    pub(crate) payload_bytes_delivered: AtomicU64,
    pub(crate) radio_bytes: AtomicU64,
    pub(crate) airtime_nanos: AtomicU64,
    pub(crate) links_opened: AtomicU64,
    pub(crate) links_closed: AtomicU64,
    pub(crate) links_lost: AtomicU64,
    pub(crate) connects_failed: AtomicU64,
    pub(crate) scan_reports: AtomicU64,
    pub(crate) scan_reports_dropped: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// A snapshot of the medium's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// ATT payloads taken from send queues.
    pub packets_sent: u64,
    /// ATT payloads delivered to receive queues.
    pub packets_delivered: u64,
    /// Transmission attempts lost and repeated.
    pub retransmissions: u64,
    /// Payload bytes delivered.
    pub payload_bytes_delivered: u64,
    /// Bytes put on the radio, headers and retransmissions included.
    pub radio_bytes: u64,
    /// Total air time used, in nanoseconds.
    pub airtime_nanos: u64,
    /// Links brought up.
    pub links_opened: u64,
    /// Links gone down, for any reason.
    pub links_closed: u64,
    /// Links gone down for loss of connection or range (not a close).
    pub links_lost: u64,
    /// Connect attempts that failed.
    pub connects_failed: u64,
    /// Scan reports delivered.
    pub scan_reports: u64,
    /// Scan reports dropped because the scanner fell behind.
    pub scan_reports_dropped: u64,
}

impl SimRadio {
    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        let c = &self.inner.counters;
        let get = |x: &AtomicU64| x.load(Ordering::Relaxed);
        SimStats {
            packets_sent: get(&c.packets_sent),
            packets_delivered: get(&c.packets_delivered),
            retransmissions: get(&c.retransmissions),
            payload_bytes_delivered: get(&c.payload_bytes_delivered),
            radio_bytes: get(&c.radio_bytes),
            airtime_nanos: get(&c.airtime_nanos),
            links_opened: get(&c.links_opened),
            links_closed: get(&c.links_closed),
            links_lost: get(&c.links_lost),
            connects_failed: get(&c.connects_failed),
            scan_reports: get(&c.scan_reports),
            scan_reports_dropped: get(&c.scan_reports_dropped),
        }
    }
}
