//! Finding a device before connecting: BlueZ connects only to LE devices it has seen
//! advertise, so a connect to an unknown device scans for it first.

use std::time::Duration;

use btleplug::api::{Central as _, CentralEvent, ScanFilter};
use btleplug::platform::{Adapter, Peripheral};
use futures::StreamExt;

use super::{address_of, stack, CentralAdapter};
use crate::link::{DeviceId, LinkError};

impl CentralAdapter {
    /// Scans for our service until `device` is seen (at most `timeout`), one scan at a time
    /// per adapter (BlueZ refuses a second `StartDiscovery` from one client).
    pub(super) async fn discover(
        &self,
        device: &DeviceId,
        timeout: Duration,
    ) -> Result<Peripheral, LinkError> {
        let looking = async {
            let _one_scan = match self.scanning.try_lock() {
                Ok(guard) => guard,
                Err(_) => {
                    let guard = self.scanning.lock().await;
                    // Another connect may have found it while this one waited for the scan.
                    if let Ok(peripheral) = self.find(device).await {
                        return Ok(peripheral);
                    }
                    guard
                }
            };
            if self.app_scans.load(std::sync::atomic::Ordering::Acquire) > 0 {
                // The application scans on this D-Bus client, and BlueZ gives each client one
                // discovery session and one filter: look from a client of our own.
                let other = CentralAdapter::new((*self.config).clone()).await?;
                Box::pin(other.discover(device, timeout)).await?;
                return self.find(device).await;
            }
            let mut events = self.adapter.events().await.map_err(stack)?;
            let filter = ScanFilter {
                services: vec![self.config.service],
            };
            self.adapter.start_scan(filter).await.map_err(stack)?;
            // Stops the scan however this ends, a timeout included (BlueZ would refuse the
            // next StartDiscovery of this client otherwise).
            let stop = StopScan(Some(self.adapter.clone()));
            let found = async {
                while let Some(event) = events.next().await {
                    let id = match event {
                        CentralEvent::DeviceDiscovered(id)
                        | CentralEvent::DeviceUpdated(id)
                        | CentralEvent::ServicesAdvertisement { id, .. } => id,
                        _ => continue,
                    };
                    let Ok(peripheral) = self.adapter.peripheral(&id).await else {
                        continue;
                    };
                    if id.to_string() == device.as_str()
                        || address_of(&peripheral).as_ref() == Some(device)
                    {
                        return Ok(peripheral);
                    }
                }
                Err(LinkError::AdapterUnavailable("event stream ended".into()))
            }
            .await;
            // Awaited before the next connect may scan (it waits on `scanning`).
            stop.stop().await;
            found
        };
        match tokio::time::timeout(timeout, looking).await {
            Ok(found) => found,
            Err(_) => Err(LinkError::DeviceNotFound(device.clone())),
        }
    }
}

/// Stops the adapter's scan: awaited by [`StopScan::stop`], or in a task when dropped
/// (a cancelled connect).
struct StopScan(Option<Adapter>);

impl StopScan {
    async fn stop(mut self) {
        if let Some(adapter) = self.0.take() {
            if let Err(err) = adapter.stop_scan().await {
                tracing::debug!(error = %err, "stop_scan failed");
            }
        }
    }
}

impl Drop for StopScan {
    fn drop(&mut self) {
        if let Some(adapter) = self.0.take() {
            tokio::spawn(async move {
                if let Err(err) = adapter.stop_scan().await {
                    tracing::debug!(error = %err, "stop_scan failed");
                }
            });
        }
    }
}
