//! `ble-bluez`: [`BleTransport`] on the real Linux BLE stack without a radio. Every transport
//! is one adapter of the BlueZ emulator (`crates/transport-ble/bluez-emu`, started once per process, MTU
//! 247): a [`DualAdapter`] of our btleplug central and our bluer peripheral on that adapter,
//! both speaking real D-Bus to the emulator. `listen_addr` is `ble://local`; a listener's
//! address is its adapter's Bluetooth address, which a dialing central scans for.
//!
//! Raw access: a raw source is a central of its own on its own adapter (one per source
//! number, kept for the harness's lifetime, so its limiter key stays the same), whose link to
//! the listener is wrapped in a `BleStream` with no Noise.
//!
//! Deviations: one LE link per pair of devices, as on every real stack, so the cases that
//! hold two connections between one pair at once (`limit_per_peer_*`,
//! `limit_rate_per_source`) are n/a ([`Harness::one_link_per_pair`]); the simulator allows
//! several. Every adapter's link cap is 256 instead of 7, as in `ble-sim-*`, because the
//! hostile cases hold a hundred raw links to one listener (the cap of 7 is tested in the
//! crate's own tests).
//!
//! Where the emulator cannot start (no `dbus-daemon`, no Python `dbus-fast`), every case is
//! reported ignored with the reason ([`Harness::unavailable`]).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bitcraps_transport_ble::central::{CentralAdapter, CentralConfig};
use bitcraps_transport_ble::emulator::{AdapterLease, BluezEmulator};
use bitcraps_transport_ble::link::{
    AdvertisingConfig, BleAdapter, BleLink, DualAdapter, IncomingLinks, LinkError, Scan,
};
use bitcraps_transport_ble::peripheral::{PeripheralAdapter, PeripheralConfig};
use bitcraps_transport_ble::{BleStream, BleTransport, DeviceId};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter, Transport, TransportAddress};

use crate::{Harness, RawIo};

/// Adapters the shared emulator starts with: none, each transport and raw source plugs in
/// its own ([`AdapterLease`]) and unplugs it when dropped.
const ADAPTERS: usize = 0;
/// A raw source's connect, scan included: a hundred sources connect at once in one case.
const RAW_CONNECT_TIMEOUT: Duration = Duration::from_secs(18);
/// Link cap of every adapter (see the module docs).
const LINK_CAP: usize = 256;
/// The ATT MTU of every link (as `ble-sim-247`).
const MTU: u16 = 247;

/// Runs the suite on [`BleTransport`] over the BlueZ emulator.
#[derive(Debug)]
pub struct BleBluezHarness {
    emulator: Result<Arc<BluezEmulator>, String>,
    raw_sources: tokio::sync::Mutex<BTreeMap<u8, Arc<Leased<CentralAdapter>>>>,
}

/// An adapter and the lease of the emulated controller it runs on (unplugged when dropped,
/// after the adapter).
struct Leased<A> {
    adapter: A,
    _lease: AdapterLease,
}

impl<A> std::fmt::Debug for Leased<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leased")
            .field("lease", &self._lease)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<A: BleAdapter> BleAdapter for Leased<A> {
    fn local_id(&self) -> DeviceId {
        self.adapter.local_id()
    }

    fn max_links(&self) -> usize {
        self.adapter.max_links()
    }

    async fn start_advertising(&self, config: AdvertisingConfig) -> Result<(), LinkError> {
        self.adapter.start_advertising(config).await
    }

    async fn stop_advertising(&self) -> Result<(), LinkError> {
        self.adapter.stop_advertising().await
    }

    async fn scan(&self, service: uuid::Uuid) -> Result<Scan, LinkError> {
        self.adapter.scan(service).await
    }

    async fn connect(&self, device: &DeviceId, timeout: Duration) -> Result<BleLink, LinkError> {
        self.adapter.connect(device, timeout).await
    }

    async fn listen(&self) -> Result<IncomingLinks, LinkError> {
        self.adapter.listen().await
    }
}

/// A fresh harness on the process's emulator.
pub fn harness() -> Arc<dyn Harness> {
    Arc::new(BleBluezHarness {
        emulator: BluezEmulator::shared(ADAPTERS, MTU),
        raw_sources: tokio::sync::Mutex::new(BTreeMap::new()),
    })
}

fn emulator(h: &BleBluezHarness) -> &Arc<BluezEmulator> {
    h.emulator
        .as_ref()
        .expect("cases run only when the emulator is available")
}

fn lease(h: &BleBluezHarness) -> io::Result<AdapterLease> {
    AdapterLease::new(emulator(h)).map_err(io::Error::other)
}

async fn central(name: String) -> io::Result<CentralAdapter> {
    CentralAdapter::new(CentralConfig {
        adapter_name: Some(name),
        max_links: LINK_CAP,
        ..CentralConfig::default()
    })
    .await
    .map_err(io::Error::other)
}

async fn dual(lease: AdapterLease) -> io::Result<Leased<DualAdapter>> {
    let name = lease.name().to_string();
    let peripheral = PeripheralAdapter::new(PeripheralConfig {
        adapter_name: Some(name.clone()),
        max_links: LINK_CAP,
        ..PeripheralConfig::default()
    })
    .await
    .map_err(io::Error::other)?;
    let central = central(name).await?;
    Ok(Leased {
        adapter: DualAdapter::new(Arc::new(central), Arc::new(peripheral)),
        _lease: lease,
    })
}

async fn open_central(lease: io::Result<AdapterLease>) -> io::Result<Leased<CentralAdapter>> {
    let lease = lease?;
    Ok(Leased {
        adapter: central(lease.name().to_string()).await?,
        _lease: lease,
    })
}

#[async_trait]
impl Harness for BleBluezHarness {
    fn name(&self) -> &'static str {
        "ble-bluez"
    }

    fn one_link_per_pair(&self) -> bool {
        true
    }

    fn unavailable(&self) -> Option<String> {
        self.emulator.as_ref().err().cloned()
    }

    fn transport(
        &self,
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Arc<dyn Transport> {
        // Opening the adapters is async (D-Bus); `transport` is not.
        let adapter = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async { dual(lease(self)?).await })
        })
        .unwrap_or_else(|e| panic!("opening an emulated adapter: {e}"));
        Arc::new(BleTransport::with_limiter(
            Arc::new(adapter),
            LocalIdentity::new(keypair),
            channel,
            limiter,
        ))
    }

    fn listen_addr(&self) -> TransportAddress {
        TransportAddress::Bluetooth("local".into())
    }

    async fn connect_raw(
        &self,
        addr: &TransportAddress,
        source: u8,
    ) -> Option<io::Result<Box<dyn RawIo>>> {
        let TransportAddress::Bluetooth(target) = addr else {
            return Some(Err(io::Error::other(format!("not a ble address: {addr}"))));
        };
        let known = self.raw_sources.lock().await.get(&source).cloned();
        let device = match known {
            Some(device) => device,
            // Opened without the lock: a hundred sources open their adapters in parallel.
            None => match open_central(lease(self)).await {
                Ok(device) => self
                    .raw_sources
                    .lock()
                    .await
                    .entry(source)
                    .or_insert(Arc::new(device))
                    .clone(),
                Err(err) => return Some(Err(err)),
            },
        };
        let link = device
            .connect(&DeviceId::new(target.as_str()), RAW_CONNECT_TIMEOUT)
            .await
            .map(|link| Box::new(BleStream::new(link)) as Box<dyn RawIo>)
            .map_err(io::Error::other);
        Some(link)
    }
}
