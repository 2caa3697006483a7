//! The central (GATT client) role on btleplug: scan for the BitCraps service, connect, and run
//! a link over the write characteristic (write-without-response, central -> peripheral) and
//! the notify characteristic (peripheral -> central).
//!
//! btleplug cannot advertise or accept connections; those operations fail with
//! [`LinkError::Unsupported`] (the peripheral role is `crate::peripheral` on Linux).
//!
//! # MTU
//!
//! btleplug 0.11 does not expose the negotiated ATT MTU on any platform. On Linux the central
//! reads it from BlueZ itself: after service discovery it reads the `MTU` property of the
//! write characteristic (`org.bluez.GattCharacteristic1.MTU`, BlueZ 5.62+) over D-Bus, and
//! the link uses that (see `mtu.rs`). Elsewhere, or when BlueZ does not report it, the link
//! uses [`CentralConfig::mtu`], 23 by default: every BLE link supports it, so no write is
//! ever too large. A write above the real MTU fails (BlueZ refuses a Write Command over
//! `MTU - 3` bytes), which takes the link down.
//!
//! # Device ids
//!
//! On Linux a discovered device's id is its Bluetooth address (`AA:BB:CC:DD:EE:FF`), the
//! same text a BlueZ peripheral reports as its own id, so the address a listener prints is
//! the address a central dials; btleplug's own id (`hci0/dev_AA_BB_...`) is accepted too.
//! On macOS and iOS (no addresses) the id is btleplug's, a per-host UUID.
//!
//! # Tests
//!
//! Hardware tests live in `tests/hardware.rs`, ignored by default ("needs a Bluetooth
//! adapter"); run them with `cargo test -p bitcraps-transport-ble -- --ignored` on a machine
//! with a powered adapter and, for the connect test, a BitCraps peripheral nearby.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{
    Central as _, CentralEvent, Characteristic, Manager as _, Peripheral as _, ScanFilter,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::link::{
    new_link, AdvertisingConfig, BleAdapter, BleLink, DeviceId, DiscoveredDevice, IncomingLinks,
    LinkControl, LinkError, LinkInfo, QueueConfig, Role, Scan,
};
use crate::uuids;

mod discover;
mod io;
#[cfg(target_os = "linux")]
mod mtu;

use io::{read_loop, write_loop};

const BACKEND: &str = "btleplug";

/// Settings of a [`CentralAdapter`].
#[derive(Clone, Debug)]
pub struct CentralConfig {
    /// The GATT service to look for.
    pub service: Uuid,
    /// The characteristic written (central -> peripheral).
    pub write_characteristic: Uuid,
    /// The characteristic subscribed to (peripheral -> central).
    pub notify_characteristic: Uuid,
    /// The ATT MTU a link uses when the stack does not report one (see the
    /// [module docs](self)); clamped to 23..=517.
    pub mtu: u16,
    /// The adapter to open by name (`hci0`, ... on Linux, matched against the start of
    /// btleplug's adapter info); `None` for the first one.
    pub adapter_name: Option<String>,
    /// Queue sizes of each link.
    pub queues: QueueConfig,
    /// Scan reports buffered before new ones are dropped.
    pub scan_queue: usize,
    /// Most links at once (BlueZ has no fixed cap; 7 matches the mobile platforms).
    pub max_links: usize,
}

impl Default for CentralConfig {
    fn default() -> Self {
        Self {
            service: uuids::SERVICE,
            write_characteristic: uuids::WRITE_CHARACTERISTIC,
            notify_characteristic: uuids::NOTIFY_CHARACTERISTIC,
            mtu: crate::link::MIN_MTU,
            adapter_name: None,
            queues: QueueConfig::default(),
            scan_queue: 64,
            max_links: 7,
        }
    }
}

fn stack(err: btleplug::Error) -> LinkError {
    LinkError::Stack(err.to_string())
}

/// The central role on the platform's first Bluetooth adapter, through btleplug.
#[derive(Clone, Debug)]
pub struct CentralAdapter {
    adapter: Adapter,
    config: Arc<CentralConfig>,
    local: DeviceId,
    /// Controls of the links made so far (pruned of the down ones on each connect): the cap.
    links: Arc<std::sync::Mutex<Vec<LinkControl>>>,
    /// Held by a connect that scans for its device.
    scanning: Arc<tokio::sync::Mutex<()>>,
    /// Scans of [`BleAdapter::scan`] running on this D-Bus client.
    app_scans: Arc<std::sync::atomic::AtomicUsize>,
}

impl CentralAdapter {
    /// Opens the adapter [`CentralConfig::adapter_name`] names, or the first one. Fails with
    /// [`LinkError::AdapterUnavailable`] when there is none (or no system D-Bus on Linux).
    pub async fn new(config: CentralConfig) -> Result<Self, LinkError> {
        let unavailable = |e: btleplug::Error| LinkError::AdapterUnavailable(e.to_string());
        let manager = Manager::new().await.map_err(unavailable)?;
        let mut adapters = manager.adapters().await.map_err(unavailable)?;
        if let Some(name) = &config.adapter_name {
            // Try first the adapters whose debug form names the wanted object path
            // (`/org/bluez/hci3` on Linux): one `adapter_info` call instead of one per
            // adapter. Each candidate is still checked below.
            let path = format!("/org/bluez/{name}");
            let names_it = |a: &Adapter| {
                let debug = format!("{a:?}");
                debug.match_indices(path.as_str()).any(|(at, _)| {
                    !debug[at + path.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
                })
            };
            adapters.sort_by_key(|a| !names_it(a));
        }
        let mut chosen = None;
        for adapter in adapters {
            let info = adapter.adapter_info().await.map_err(unavailable)?;
            let wanted = match &config.adapter_name {
                // "hci1 (usb:...)": the name, then a space or the end.
                Some(name) => info
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' ')),
                None => true,
            };
            if wanted {
                chosen = Some(adapter);
                break;
            }
        }
        let adapter = chosen
            .ok_or_else(|| LinkError::AdapterUnavailable("no such Bluetooth adapter".into()))?;
        Self::from_adapter(adapter, config).await
    }

    /// Uses a given btleplug adapter.
    pub async fn from_adapter(
        adapter: Adapter,
        mut config: CentralConfig,
    ) -> Result<Self, LinkError> {
        config.mtu = config.mtu.clamp(crate::link::MIN_MTU, crate::link::MAX_MTU);
        let local = adapter
            .adapter_info()
            .await
            .map_err(|e| LinkError::AdapterUnavailable(e.to_string()))?;
        Ok(Self {
            adapter,
            config: Arc::new(config),
            local: DeviceId::new(local),
            links: Arc::default(),
            scanning: Arc::default(),
            app_scans: Arc::default(),
        })
    }

    async fn find(&self, device: &DeviceId) -> Result<Peripheral, LinkError> {
        let peripherals = self.adapter.peripherals().await.map_err(stack)?;
        peripherals
            .into_iter()
            .find(|p| {
                p.id().to_string() == device.as_str() || address_of(p) == Some(device.clone())
            })
            .ok_or_else(|| LinkError::DeviceNotFound(device.clone()))
    }

    /// Connects, discovers services, finds both characteristics, reads the MTU, opens the
    /// notification stream and subscribes, in that order: the peripheral's link (and its
    /// handshake clock) starts with the subscription, and no notification can arrive before
    /// the stream that receives it exists.
    async fn open(&self, peripheral: &Peripheral, device: &DeviceId) -> Result<Opened, LinkError> {
        if !peripheral.is_connected().await.map_err(stack)? {
            peripheral.connect().await.map_err(stack)?;
        }
        peripheral.discover_services().await.map_err(stack)?;
        let chars = peripheral.characteristics();
        let find = |uuid: Uuid| {
            chars
                .iter()
                .find(|c| c.uuid == uuid && c.service_uuid == self.config.service)
                .cloned()
                .ok_or_else(|| LinkError::ServiceMissing(device.clone()))
        };
        let write = find(self.config.write_characteristic)?;
        let notify = find(self.config.notify_characteristic)?;
        let mtu = self.stack_mtu(peripheral).await.unwrap_or(self.config.mtu);
        let notifications = peripheral.notifications().await.map_err(stack)?;
        peripheral.subscribe(&notify).await.map_err(stack)?;
        Ok(Opened {
            write,
            notify,
            mtu,
            notifications,
        })
    }
}

#[async_trait]
impl BleAdapter for CentralAdapter {
    fn local_id(&self) -> DeviceId {
        self.local.clone()
    }

    fn max_links(&self) -> usize {
        self.config.max_links
    }

    async fn start_advertising(&self, _config: AdvertisingConfig) -> Result<(), LinkError> {
        Err(LinkError::Unsupported {
            operation: "advertising",
            backend: BACKEND,
        })
    }

    async fn stop_advertising(&self) -> Result<(), LinkError> {
        Ok(())
    }

    async fn scan(&self, service: Uuid) -> Result<Scan, LinkError> {
        let mut events = self.adapter.events().await.map_err(stack)?;
        let filter = ScanFilter {
            services: vec![service],
        };
        self.adapter.start_scan(filter).await.map_err(stack)?;
        let (tx, rx) = mpsc::channel(self.config.scan_queue.max(1));
        let adapter = self.adapter.clone();
        let app_scans = self.app_scans.clone();
        app_scans.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let task = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = tx.closed() => break,
                    event = events.next() => event,
                };
                let id = match event {
                    Some(CentralEvent::DeviceDiscovered(id))
                    | Some(CentralEvent::DeviceUpdated(id))
                    | Some(CentralEvent::ServicesAdvertisement { id, .. }) => id,
                    Some(_) => continue,
                    None => break,
                };
                let Ok(peripheral) = adapter.peripheral(&id).await else {
                    continue;
                };
                let Ok(Some(props)) = peripheral.properties().await else {
                    continue;
                };
                // Stacks may ignore the filter: check the advertised services ourselves.
                if !props.services.contains(&service) {
                    continue;
                }
                let report = DiscoveredDevice {
                    id: address_of(&peripheral).unwrap_or_else(|| DeviceId::new(id.to_string())),
                    name: props.local_name,
                    rssi: props.rssi,
                };
                if tx.try_send(report).is_err() {
                    tracing::trace!("scan queue full; report dropped");
                }
            }
            if let Err(err) = adapter.stop_scan().await {
                tracing::debug!(error = %err, "stop_scan failed");
            }
            app_scans.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        });
        // Not aborted with the scan: the task sees the receiver go and stops BlueZ's
        // discovery itself (aborted, it left discovery on, and BlueZ refuses this client's
        // next StartDiscovery with InProgress).
        drop(task);
        Ok(Scan::new(rx, None))
    }

    async fn connect(&self, device: &DeviceId, timeout: Duration) -> Result<BleLink, LinkError> {
        {
            let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
            links.retain(|control| !control.is_down());
            if links.len() >= self.config.max_links {
                return Err(LinkError::LinkCapReached {
                    device: self.local.clone(),
                    limit: self.config.max_links,
                });
            }
        }
        let started = tokio::time::Instant::now();
        let peripheral = match self.find(device).await {
            Ok(peripheral) => peripheral,
            // BlueZ only connects to LE devices it has seen advertise: look for it first.
            Err(LinkError::DeviceNotFound(_)) => self.discover(device, timeout).await?,
            Err(err) => return Err(err),
        };
        if self.has_link(device) {
            // One LE connection per pair of devices: a second link would share its ATT
            // bearer (and its notifications) with the first.
            return Err(LinkError::Refused(device.clone()));
        }
        let timeout = timeout.saturating_sub(started.elapsed());
        let events = self.adapter.events().await.map_err(stack)?;
        let opened = tokio::time::timeout(timeout, self.open(&peripheral, device)).await;
        let Opened {
            write,
            notify,
            mtu,
            notifications,
        } = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(err)) => {
                let _ = peripheral.disconnect().await;
                return Err(err);
            }
            Err(_) => {
                let _ = peripheral.disconnect().await;
                return Err(LinkError::Timeout(timeout));
            }
        };
        let info = LinkInfo::new(Role::Central, device.clone(), mtu)?;
        let (link, driver) = new_link(info, self.config.queues);
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(driver.control.clone());
        tracing::debug!(remote = %device, mtu, "btleplug link up");
        tokio::spawn(write_loop(
            peripheral.clone(),
            write,
            driver.send_queue,
            driver.control.clone(),
        ));
        tokio::spawn(read_loop(
            peripheral,
            notify.uuid,
            notifications,
            events,
            driver.incoming,
            driver.control,
        ));
        Ok(link)
    }

    async fn listen(&self) -> Result<IncomingLinks, LinkError> {
        Err(LinkError::Unsupported {
            operation: "accepting links",
            backend: BACKEND,
        })
    }
}

impl CentralAdapter {
    /// Whether a live link of ours goes to `device`.
    fn has_link(&self, device: &DeviceId) -> bool {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links
            .iter()
            .any(|control| !control.is_down() && control.info().remote() == device)
    }

    /// The ATT MTU the stack negotiated with `peripheral`, where it tells (Linux: BlueZ).
    async fn stack_mtu(&self, peripheral: &Peripheral) -> Option<u16> {
        #[cfg(target_os = "linux")]
        {
            let mtu = mtu::bluez_mtu(
                &peripheral.id().to_string(),
                self.config.write_characteristic,
            )
            .await;
            mtu.map(|mtu| mtu.clamp(crate::link::MIN_MTU, crate::link::MAX_MTU))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = peripheral;
            None
        }
    }
}

/// What [`CentralAdapter::open`] sets up.
struct Opened {
    write: Characteristic,
    notify: Characteristic,
    mtu: u16,
    notifications:
        std::pin::Pin<Box<dyn futures::Stream<Item = btleplug::api::ValueNotification> + Send>>,
}

/// The device's Bluetooth address as a [`DeviceId`], where the platform has one (not the
/// all-zero address macOS and iOS report).
fn address_of(peripheral: &Peripheral) -> Option<DeviceId> {
    let address = peripheral.address();
    (address != btleplug::api::BDAddr::default()).then(|| DeviceId::new(address.to_string()))
}
