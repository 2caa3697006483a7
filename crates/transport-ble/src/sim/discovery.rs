//! Discovery on the medium: which scanner hears which advertiser.
//!
//! A scan is told at once about every advertiser of its service in its partition, and later
//! about each advertiser that starts, or that comes into its partition. Reports go through the
//! scan's bounded queue; when it is full the report is dropped and counted.

use super::radio::{RadioState, Scanner};
use super::rng::SimRng;
use super::stats::{bump, Counters};
use crate::link::{AdvertisingConfig, DeviceId, DiscoveredDevice};

impl RadioState {
    fn report(
        rng: &mut SimRng,
        counters: &Counters,
        scanner: &Scanner,
        id: &DeviceId,
        adv: &AdvertisingConfig,
    ) {
        if scanner.service != adv.service {
            return;
        }
        let power = i16::from(adv.tx_power_dbm.unwrap_or(0));
        // A plausible indoor RSSI: 40..80 dB of path loss below the transmit power.
        let rssi = power - 40 - i16::try_from(rng.below(40)).unwrap_or(0);
        let report = DiscoveredDevice {
            id: id.clone(),
            name: Some(adv.local_name.clone()),
            rssi: Some(rssi),
        };
        match scanner.tx.try_send(report) {
            Ok(()) => bump(&counters.scan_reports, 1),
            Err(_) => bump(&counters.scan_reports_dropped, 1),
        }
    }

    /// Reports `advertiser` (if it advertises) to every scanner in its partition.
    pub(crate) fn announce_advertiser(&mut self, advertiser: &DeviceId, counters: &Counters) {
        let Some(entry) = self.devices.get(advertiser) else {
            return;
        };
        let Some(adv) = entry.advertising.clone() else {
            return;
        };
        let partition = entry.config.partition;
        let rng = &mut self.rng;
        for (id, dev) in self.devices.iter_mut() {
            if id == advertiser || dev.config.partition != partition {
                continue;
            }
            dev.scanners.retain(|s| !s.tx.is_closed());
            for scanner in &dev.scanners {
                Self::report(rng, counters, scanner, advertiser, &adv);
            }
        }
    }

    /// Reports every advertiser in `scanner_device`'s partition to one new scanner.
    pub(crate) fn report_all_to(
        &mut self,
        scanner_device: &DeviceId,
        scanner: &Scanner,
        counters: &Counters,
    ) {
        let Some(partition) = self.partition_of(scanner_device) else {
            return;
        };
        for (id, dev) in &self.devices {
            if id == scanner_device || dev.config.partition != partition {
                continue;
            }
            if let Some(adv) = &dev.advertising {
                Self::report(&mut self.rng, counters, scanner, id, adv);
            }
        }
    }

    /// Reports every advertiser in `scanner_device`'s partition to its scanners.
    pub(crate) fn announce_to_scanner(&mut self, scanner_device: &DeviceId, counters: &Counters) {
        let Some(partition) = self.partition_of(scanner_device) else {
            return;
        };
        let adverts: Vec<(DeviceId, AdvertisingConfig)> = self
            .devices
            .iter()
            .filter(|(id, d)| *id != scanner_device && d.config.partition == partition)
            .filter_map(|(id, d)| d.advertising.clone().map(|a| (id.clone(), a)))
            .collect();
        let rng = &mut self.rng;
        if let Some(dev) = self.devices.get_mut(scanner_device) {
            dev.scanners.retain(|s| !s.tx.is_closed());
            for (id, adv) in &adverts {
                for scanner in &dev.scanners {
                    Self::report(rng, counters, scanner, id, adv);
                }
            }
        }
    }
}
