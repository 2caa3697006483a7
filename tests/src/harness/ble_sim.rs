//! The BLE backend's harnesses, on the simulated radio: `ble-sim-23` and `ble-sim-247` (ATT MTU
//! 23 / 247, 2M PHY, no loss). Each harness instance has its own `SimRadio`; every transport is
//! a new `SimDevice`, and `listen_addr` is `ble://local` (this device).
//!
//! Raw access: a raw source is a device of its own (one per source number, kept for the
//! harness's lifetime so its id, and so its limiter key, stays the same), whose link to the
//! listener is wrapped in a `BleStream` with no Noise: the hostile cases speak raw bytes to the
//! listener's handshake.
//!
//! Deviation from a phone: every device's link cap is 256 instead of 7, because the hostile
//! cases hold a hundred raw links to one listener at once (the cap of 7 itself is tested in the
//! crate's own tests). The suite runs in real time, and so does the radio: the air time of
//! every case at the 2M PHY stays within a few seconds (the 10,000-message case is about 5 s
//! at MTU 23).

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bitcraps_transport_ble::link::BleAdapter;
use bitcraps_transport_ble::sim::{LinkRate, SimConfig, SimDevice, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::{BleStream, BleTransport, DeviceId};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter, Transport, TransportAddress};

use crate::{Harness, RawIo};

/// Link cap of every simulated device in the suite (see the module docs).
const LINK_CAP: usize = 256;

/// Runs the suite on [`BleTransport`] over a [`SimRadio`].
#[derive(Debug)]
pub struct BleSimHarness {
    name: &'static str,
    mtu: u16,
    radio: SimRadio,
    raw_sources: Mutex<BTreeMap<u8, Arc<SimDevice>>>,
}

fn harness(name: &'static str, mtu: u16) -> Arc<dyn Harness> {
    Arc::new(BleSimHarness {
        name,
        mtu,
        radio: SimRadio::new(SimConfig {
            rate: LinkRate::LE_2M,
            ..SimConfig::default()
        }),
        raw_sources: Mutex::new(BTreeMap::new()),
    })
}

/// A fresh harness at ATT MTU 23 (the BLE minimum: 14 bytes of chunk per fragment).
pub fn harness_23() -> Arc<dyn Harness> {
    harness("ble-sim-23", 23)
}

/// A fresh harness at ATT MTU 247 (238 bytes of chunk per fragment).
pub fn harness_247() -> Arc<dyn Harness> {
    harness("ble-sim-247", 247)
}

impl BleSimHarness {
    fn device(&self) -> Arc<SimDevice> {
        Arc::new(self.radio.add_device(SimDeviceConfig {
            max_mtu: self.mtu,
            link_cap: LINK_CAP,
            ..SimDeviceConfig::default()
        }))
    }

    fn raw_source(&self, source: u8) -> Arc<SimDevice> {
        let mut sources = self
            .raw_sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sources
            .entry(source)
            .or_insert_with(|| self.device())
            .clone()
    }
}

#[async_trait]
impl Harness for BleSimHarness {
    fn name(&self) -> &'static str {
        self.name
    }

    fn transport(
        &self,
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Arc<dyn Transport> {
        Arc::new(BleTransport::with_limiter(
            self.device(),
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
        let device = self.raw_source(source);
        let link = device
            .connect(&DeviceId::new(target.as_str()), Duration::from_secs(5))
            .await
            .map(|link| Box::new(BleStream::new(link)) as Box<dyn RawIo>)
            .map_err(io::Error::other);
        Some(link)
    }
}
