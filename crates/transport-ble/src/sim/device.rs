//! A simulated device: one [`BleAdapter`] on the shared medium, in both roles.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::air;
use super::radio::{LinkEntry, RadioInner, Scanner};
use super::rng::SimRng;
use super::stats::bump;
use crate::link::{
    new_link, AdvertisingConfig, BleAdapter, BleLink, DeviceId, IncomingLinks, LinkError, LinkInfo,
    Role, Scan,
};

/// A device on a [`SimRadio`](super::SimRadio). Dropping it takes it off the medium: its links
/// drop, its scans and listener end.
#[derive(Debug)]
pub struct SimDevice {
    radio: Arc<RadioInner>,
    id: DeviceId,
    link_cap: usize,
}

impl SimDevice {
    pub(crate) fn new(radio: Arc<RadioInner>, id: DeviceId, link_cap: usize) -> Self {
        Self {
            radio,
            id,
            link_cap,
        }
    }

    /// This device's id (`sim:N`).
    pub fn id(&self) -> &DeviceId {
        &self.id
    }

    fn gone(&self) -> LinkError {
        LinkError::AdapterUnavailable(format!("{} left the medium", self.id))
    }

    fn fail<T>(&self, err: LinkError) -> Result<T, LinkError> {
        bump(&self.radio.counters.connects_failed, 1);
        tracing::debug!(device = %self.id, error = %err, "sim connect failed");
        Err(err)
    }

    /// Checks both ends and reserves a link slot on each; returns the link's MTU and seed.
    fn reserve(&self, target: &DeviceId) -> Result<(u16, u64), LinkError> {
        let mut st = self.radio.lock();
        let me = st.devices.get(&self.id).ok_or_else(|| self.gone())?;
        let (my_mtu, my_cap, my_links, my_part) = (
            me.config.max_mtu,
            me.config.link_cap,
            me.links,
            me.config.partition,
        );
        if target == &self.id {
            return Err(LinkError::Refused(target.clone()));
        }
        let them = st
            .devices
            .get(target)
            .ok_or_else(|| LinkError::DeviceNotFound(target.clone()))?;
        if them.config.partition != my_part {
            return Err(LinkError::Unreachable(target.clone()));
        }
        let listening = them.incoming.as_ref().is_some_and(|tx| !tx.is_closed());
        if them.advertising.is_none() || !listening {
            return Err(LinkError::Refused(target.clone()));
        }
        if my_links >= my_cap {
            return Err(LinkError::LinkCapReached {
                device: self.id.clone(),
                limit: my_cap,
            });
        }
        if them.links >= them.config.link_cap {
            return Err(LinkError::LinkCapReached {
                device: target.clone(),
                limit: them.config.link_cap,
            });
        }
        let mtu = my_mtu.min(them.config.max_mtu);
        let seed = st.rng.next_u64();
        for d in [&self.id, target] {
            if let Some(entry) = st.devices.get_mut(d) {
                entry.links += 1;
            }
        }
        Ok((mtu, seed))
    }

    fn unreserve(&self, target: &DeviceId) {
        let mut st = self.radio.lock();
        for d in [&self.id, target] {
            if let Some(entry) = st.devices.get_mut(d) {
                entry.links = entry.links.saturating_sub(1);
            }
        }
    }

    /// Builds both ends, hands the peripheral end to the target's listener and starts the
    /// link's tasks. Runs after the connect latency; re-checks range and the listener.
    fn establish(&self, target: &DeviceId, mtu: u16, seed: u64) -> Result<BleLink, LinkError> {
        let mut st = self.radio.lock();
        let (Some(my_part), Some(their_part)) =
            (st.partition_of(&self.id), st.partition_of(target))
        else {
            return Err(LinkError::DeviceNotFound(target.clone()));
        };
        if my_part != their_part {
            return Err(LinkError::Unreachable(target.clone()));
        }
        let queues = st.config.queues;
        let central_info = LinkInfo::new(Role::Central, target.clone(), mtu)?;
        let peripheral_info = LinkInfo::new(Role::Peripheral, self.id.clone(), mtu)?;
        let (central, central_driver) = new_link(central_info, queues);
        let (peripheral, peripheral_driver) = new_link(peripheral_info, queues);
        let incoming = st
            .devices
            .get(target)
            .and_then(|d| d.incoming.clone())
            .ok_or_else(|| LinkError::Refused(target.clone()))?;
        if incoming.try_send(peripheral).is_err() {
            return Err(LinkError::Refused(target.clone()));
        }
        let link_id = st.new_link_id();
        st.links.insert(
            link_id,
            LinkEntry {
                a: self.id.clone(),
                b: target.clone(),
                ctl_a: central_driver.control.clone(),
                ctl_b: peripheral_driver.control.clone(),
            },
        );
        drop(st);
        bump(&self.radio.counters.links_opened, 1);
        air::spawn_link(
            self.radio.clone(),
            link_id,
            (self.id.clone(), central_driver),
            (target.clone(), peripheral_driver),
            SimRng::new(seed),
        );
        tracing::debug!(central = %self.id, peripheral = %target, mtu, "sim link up");
        Ok(central)
    }
}

/// Link slots reserved by a connect in progress.
struct Reservation<'a> {
    device: &'a SimDevice,
    target: &'a DeviceId,
    armed: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.device.unreserve(self.target);
        }
    }
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        self.radio.remove_device(&self.id);
    }
}

#[async_trait]
impl BleAdapter for SimDevice {
    fn local_id(&self) -> DeviceId {
        self.id.clone()
    }

    fn max_links(&self) -> usize {
        self.link_cap
    }

    async fn start_advertising(&self, config: AdvertisingConfig) -> Result<(), LinkError> {
        let mut st = self.radio.lock();
        let entry = st.devices.get_mut(&self.id).ok_or_else(|| self.gone())?;
        entry.advertising = Some(config);
        st.announce_advertiser(&self.id, &self.radio.counters);
        Ok(())
    }

    async fn stop_advertising(&self) -> Result<(), LinkError> {
        let mut st = self.radio.lock();
        let entry = st.devices.get_mut(&self.id).ok_or_else(|| self.gone())?;
        entry.advertising = None;
        Ok(())
    }

    async fn scan(&self, service: Uuid) -> Result<Scan, LinkError> {
        let mut st = self.radio.lock();
        let (tx, rx) = mpsc::channel(st.config.scan_queue.max(1));
        let scanner = Scanner { service, tx };
        if !st.devices.contains_key(&self.id) {
            return Err(self.gone());
        }
        st.report_all_to(&self.id, &scanner, &self.radio.counters);
        if let Some(entry) = st.devices.get_mut(&self.id) {
            entry.scanners.push(scanner);
        }
        Ok(Scan::new(rx, None))
    }

    async fn connect(&self, device: &DeviceId, timeout: Duration) -> Result<BleLink, LinkError> {
        let (mtu, seed) = match self.reserve(device) {
            Ok(reserved) => reserved,
            Err(err) => return self.fail(err),
        };
        // Frees the slots if this future is dropped or fails before the link is up.
        let mut reservation = Reservation {
            device: self,
            target: device,
            armed: true,
        };
        let latency = self.radio.lock().config.connect_latency;
        if latency > timeout {
            tokio::time::sleep(timeout).await;
            return self.fail(LinkError::Timeout(timeout));
        }
        tokio::time::sleep(latency).await;
        match self.establish(device, mtu, seed) {
            Ok(link) => {
                reservation.armed = false;
                Ok(link)
            }
            Err(err) => self.fail(err),
        }
    }

    async fn listen(&self) -> Result<IncomingLinks, LinkError> {
        let mut st = self.radio.lock();
        let entry = st.devices.get_mut(&self.id).ok_or_else(|| self.gone())?;
        if entry.incoming.as_ref().is_some_and(|tx| !tx.is_closed()) {
            return Err(LinkError::AlreadyListening);
        }
        let (tx, rx) = mpsc::channel(entry.config.link_cap.max(1));
        entry.incoming = Some(tx);
        Ok(IncomingLinks::new(rx, None))
    }
}
