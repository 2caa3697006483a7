//! [`DualAdapter`]: one adapter in both roles built from two, for platforms where each role
//! has its own library (on Linux: the btleplug central and the bluer peripheral on one radio).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::{AdvertisingConfig, BleAdapter, BleLink, DeviceId, IncomingLinks, LinkError, Scan};

/// Scans and connects through `central`, advertises and listens through `peripheral`.
///
/// Its id is the peripheral's (what other devices discover and dial). Remote devices that
/// connect to us show up under their central's id, which may differ from the id they
/// advertise under: the mesh therefore also deduplicates connections by `PeerId`.
pub struct DualAdapter {
    central: Arc<dyn BleAdapter>,
    peripheral: Arc<dyn BleAdapter>,
}

impl std::fmt::Debug for DualAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DualAdapter")
            .field("central", &self.central.local_id())
            .field("peripheral", &self.peripheral.local_id())
            .finish()
    }
}

impl DualAdapter {
    /// Combines a central-role and a peripheral-role adapter.
    pub fn new(central: Arc<dyn BleAdapter>, peripheral: Arc<dyn BleAdapter>) -> Self {
        Self {
            central,
            peripheral,
        }
    }
}

#[async_trait]
impl BleAdapter for DualAdapter {
    fn local_id(&self) -> DeviceId {
        self.peripheral.local_id()
    }

    /// The smaller of the two caps: both roles share one radio.
    fn max_links(&self) -> usize {
        self.central.max_links().min(self.peripheral.max_links())
    }

    async fn start_advertising(&self, config: AdvertisingConfig) -> Result<(), LinkError> {
        self.peripheral.start_advertising(config).await
    }

    async fn stop_advertising(&self) -> Result<(), LinkError> {
        self.peripheral.stop_advertising().await
    }

    async fn scan(&self, service: Uuid) -> Result<Scan, LinkError> {
        self.central.scan(service).await
    }

    async fn connect(&self, device: &DeviceId, timeout: Duration) -> Result<BleLink, LinkError> {
        self.central.connect(device, timeout).await
    }

    async fn listen(&self) -> Result<IncomingLinks, LinkError> {
        self.peripheral.listen().await
    }
}
