//! The shared medium: which devices exist, where they are, who advertises, who scans, which
//! links are up, and whose radio is busy until when.
//!
//! All state sits behind one `std` mutex that is never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::config::{LinkRate, SimConfig, SimDeviceConfig};
use super::device::SimDevice;
use super::rng::SimRng;
use super::stats::{bump, Counters};
use crate::link::{
    AdvertisingConfig, BleLink, DeviceId, DiscoveredDevice, LinkControl, LinkDownReason,
};

/// A simulated radio medium shared by [`SimDevice`]s. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SimRadio {
    pub(crate) inner: Arc<RadioInner>,
}

#[derive(Debug)]
pub(crate) struct RadioInner {
    state: Mutex<RadioState>,
    pub(crate) counters: Counters,
}

#[derive(Debug)]
pub(crate) struct RadioState {
    pub(crate) config: SimConfig,
    pub(crate) rng: SimRng,
    next_device: u64,
    next_link: u64,
    pub(crate) devices: BTreeMap<DeviceId, DeviceEntry>,
    pub(crate) links: BTreeMap<u64, LinkEntry>,
}

#[derive(Debug)]
pub(crate) struct DeviceEntry {
    pub(crate) config: SimDeviceConfig,
    pub(crate) advertising: Option<AdvertisingConfig>,
    pub(crate) links: usize,
    pub(crate) incoming: Option<mpsc::Sender<BleLink>>,
    pub(crate) scanners: Vec<Scanner>,
    pub(crate) busy_until: Instant,
}

#[derive(Debug)]
pub(crate) struct Scanner {
    pub(crate) service: Uuid,
    pub(crate) tx: mpsc::Sender<DiscoveredDevice>,
}

#[derive(Debug)]
pub(crate) struct LinkEntry {
    pub(crate) a: DeviceId,
    pub(crate) b: DeviceId,
    pub(crate) ctl_a: LinkControl,
    pub(crate) ctl_b: LinkControl,
}

/// The radio's plan for one packet.
pub(crate) struct PacketPlan {
    /// When the last attempt finishes.
    pub(crate) done_at: Instant,
    /// The packet gets through (else the link drops when `done_at` is reached).
    pub(crate) delivered: bool,
}

impl SimRadio {
    /// A new, empty medium.
    pub fn new(config: SimConfig) -> Self {
        let rng = SimRng::new(config.seed);
        Self {
            inner: Arc::new(RadioInner {
                state: Mutex::new(RadioState {
                    config,
                    rng,
                    next_device: 0,
                    next_link: 0,
                    devices: BTreeMap::new(),
                    links: BTreeMap::new(),
                }),
                counters: Counters::default(),
            }),
        }
    }

    /// Adds a device (ids are `sim:0`, `sim:1`, ... in order). It leaves the medium when the
    /// returned handle is dropped.
    pub fn add_device(&self, mut config: SimDeviceConfig) -> SimDevice {
        config.max_mtu = config
            .max_mtu
            .clamp(crate::link::MIN_MTU, crate::link::MAX_MTU);
        let mut st = self.inner.lock();
        let id = DeviceId::new(format!("sim:{}", st.next_device));
        st.next_device += 1;
        let link_cap = config.link_cap;
        st.devices.insert(
            id.clone(),
            DeviceEntry {
                config,
                advertising: None,
                links: 0,
                incoming: None,
                scanners: Vec::new(),
                busy_until: Instant::now(),
            },
        );
        drop(st);
        SimDevice::new(self.inner.clone(), id, link_cap)
    }

    /// Moves a device to another partition. Links that now cross partitions drop with
    /// [`LinkDownReason::OutOfRange`]; scanners and advertisers that now share a partition see
    /// each other. Returns the number of links dropped.
    pub fn set_partition(&self, device: &DeviceId, partition: u32) -> usize {
        let mut st = self.inner.lock();
        let Some(entry) = st.devices.get_mut(device) else {
            return 0;
        };
        entry.config.partition = partition;
        let crossing: Vec<u64> = st
            .links
            .iter()
            .filter(|(_, l)| st.partition_of(&l.a) != st.partition_of(&l.b))
            .map(|(id, _)| *id)
            .collect();
        let taken: Vec<LinkEntry> = crossing.iter().filter_map(|id| st.take_link(*id)).collect();
        st.announce_advertiser(device, &self.inner.counters);
        st.announce_to_scanner(device, &self.inner.counters);
        drop(st);
        let dropped = taken.len();
        for link in taken {
            link.ctl_a.set_down(LinkDownReason::OutOfRange);
            link.ctl_b.set_down(LinkDownReason::OutOfRange);
            self.inner.finish(link);
        }
        dropped
    }

    /// The partition a device is in.
    pub fn partition(&self, device: &DeviceId) -> Option<u32> {
        self.inner.lock().partition_of(device)
    }

    /// Drops every link between `a` and `b` (either role) with
    /// [`LinkDownReason::ConnectionLost`]; returns how many.
    pub fn drop_link(&self, a: &DeviceId, b: &DeviceId) -> usize {
        let mut st = self.inner.lock();
        let between: Vec<u64> = st
            .links
            .iter()
            .filter(|(_, l)| (&l.a == a && &l.b == b) || (&l.a == b && &l.b == a))
            .map(|(id, _)| *id)
            .collect();
        let taken: Vec<LinkEntry> = between.iter().filter_map(|id| st.take_link(*id)).collect();
        drop(st);
        let dropped = taken.len();
        for link in taken {
            link.ctl_a.set_down(LinkDownReason::ConnectionLost);
            link.ctl_b.set_down(LinkDownReason::ConnectionLost);
            self.inner.finish(link);
        }
        dropped
    }

    /// Links currently counted against a device's cap.
    pub fn link_count(&self, device: &DeviceId) -> usize {
        self.inner.lock().devices.get(device).map_or(0, |d| d.links)
    }

    /// Changes the per-attempt loss probability for packets planned from now on.
    pub fn set_loss(&self, loss: f64) {
        self.inner.lock().config.loss = loss;
    }

    /// Changes the per-packet link drop probability for packets planned from now on.
    pub fn set_drop_probability(&self, probability: f64) {
        self.inner.lock().config.drop_probability = probability;
    }

    /// Changes the link rate for packets planned from now on.
    pub fn set_rate(&self, rate: LinkRate) {
        self.inner.lock().config.rate = rate;
    }
}

impl RadioInner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, RadioState> {
        // A panic while holding the lock leaves consistent-enough state for a simulator.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Draws the fate of one packet from `from` to `to`, ready to go at `ready_at`, and
    /// reserves air time on both radios (after whatever they already carry).
    pub(crate) fn plan_packet(
        &self,
        from: &DeviceId,
        to: &DeviceId,
        payload_len: usize,
        ready_at: Instant,
        rng: &mut SimRng,
    ) -> PacketPlan {
        let mut st = self.lock();
        let cfg = &st.config;
        let (loss, max_attempts, rate) = (cfg.loss, cfg.max_attempts.max(1), cfg.rate);
        let drop_p = cfg.drop_probability;
        let mut attempts = 1u32;
        let mut delivered = true;
        while rng.chance(loss) {
            if attempts >= max_attempts {
                delivered = false;
                break;
            }
            attempts += 1;
        }
        if rng.chance(drop_p) {
            delivered = false;
        }
        let air = rate.airtime(payload_len) * attempts;
        let busy =
            |st: &RadioState, d: &DeviceId| st.devices.get(d).map_or(ready_at, |e| e.busy_until);
        let start = ready_at.max(busy(&st, from)).max(busy(&st, to));
        let done_at = start + air;
        for d in [from, to] {
            if let Some(entry) = st.devices.get_mut(d) {
                entry.busy_until = done_at;
            }
        }
        drop(st);
        let c = &self.counters;
        bump(&c.packets_sent, 1);
        bump(&c.retransmissions, u64::from(attempts - 1));
        bump(
            &c.radio_bytes,
            LinkRate::radio_bytes(payload_len) * u64::from(attempts),
        );
        bump(
            &c.airtime_nanos,
            u64::try_from(air.as_nanos()).unwrap_or(u64::MAX),
        );
        PacketPlan { done_at, delivered }
    }

    /// Ends a link one of whose ends is down: frees its slots on both devices, then tells the
    /// other end (so whoever sees the remote end go down also sees the slots free).
    /// Idempotent: the pipes and the supervisor may all call it.
    pub(crate) fn close_link(&self, link_id: u64) {
        let taken = self.lock().take_link(link_id);
        if let Some(link) = taken {
            self.finish(link);
        }
    }

    /// Settles both ends' reasons of a link already taken off the medium, and counts it.
    fn finish(&self, link: LinkEntry) {
        let (a, b) = (&link.ctl_a, &link.ctl_b);
        let reason = match (a.down_reason(), b.down_reason()) {
            (Some(r), None) => {
                b.set_down(r.for_remote());
                r
            }
            (None, Some(r)) => {
                a.set_down(r.for_remote());
                r
            }
            (Some(r), Some(_)) => r,
            (None, None) => {
                a.set_down(LinkDownReason::ConnectionLost);
                b.set_down(LinkDownReason::ConnectionLost);
                LinkDownReason::ConnectionLost
            }
        };
        bump(&self.counters.links_closed, 1);
        if matches!(
            reason,
            LinkDownReason::ConnectionLost | LinkDownReason::OutOfRange
        ) {
            bump(&self.counters.links_lost, 1);
        }
        tracing::debug!(a = %link.a, b = %link.b, %reason, "sim link down");
    }

    /// Removes a device: its links drop (the device sees `AdapterGone`, the remote
    /// `ConnectionLost`), its scans and listener end.
    pub(crate) fn remove_device(&self, id: &DeviceId) {
        let mut st = self.lock();
        st.devices.remove(id);
        let mine: Vec<u64> = st
            .links
            .iter()
            .filter(|(_, l)| &l.a == id || &l.b == id)
            .map(|(link_id, _)| *link_id)
            .collect();
        let taken: Vec<LinkEntry> = mine.iter().filter_map(|l| st.take_link(*l)).collect();
        drop(st);
        for link in taken {
            let (here, there) = if &link.a == id {
                (&link.ctl_a, &link.ctl_b)
            } else {
                (&link.ctl_b, &link.ctl_a)
            };
            here.set_down(LinkDownReason::AdapterGone);
            there.set_down(LinkDownReason::ConnectionLost);
            self.finish(link);
        }
    }
}

impl RadioState {
    pub(crate) fn partition_of(&self, device: &DeviceId) -> Option<u32> {
        self.devices.get(device).map(|d| d.config.partition)
    }

    /// Takes a link off the medium and frees its slot on both devices.
    fn take_link(&mut self, link_id: u64) -> Option<LinkEntry> {
        let link = self.links.remove(&link_id)?;
        for d in [&link.a, &link.b] {
            if let Some(entry) = self.devices.get_mut(d) {
                entry.links = entry.links.saturating_sub(1);
            }
        }
        Some(link)
    }

    pub(crate) fn new_link_id(&mut self) -> u64 {
        self.next_link += 1;
        self.next_link
    }
}
