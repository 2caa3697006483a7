//! Settings of the simulated radio and of each simulated device.

use std::time::Duration;

use crate::link::QueueConfig;

/// A simulated link rate: the effective GATT throughput of one connection, in bits per second,
/// charged on every ATT payload plus its 3-byte ATT and 4-byte L2CAP headers.
///
/// # The presets, and why
///
/// With the LE Data Length Extension (LL payloads of 251 bytes, what every phone since about
/// 2016 negotiates), one full packet takes, on the 1M PHY, (1 preamble + 4 access address +
/// 2 header + 251 payload + 3 CRC) x 8 us = 2088 us, plus two inter-frame spaces (2 x 150 us)
/// and the peer's empty acknowledgement (80 us): 2468 us for 251 L2CAP bytes, a ceiling of
/// 814 kbit/s. On the 2M PHY the packet takes 1048 us and the acknowledgement 44 us: 1392 us,
/// a ceiling of 1443 kbit/s. Real stacks lose a further 10-15 % at the ends of connection
/// events, and published phone measurements land near 700 kbit/s and 1.3 Mbit/s, so:
///
/// * [`LinkRate::LE_1M`] = 700 000 bit/s,
/// * [`LinkRate::LE_2M`] = 1 300 000 bit/s.
///
/// The model charges bytes, not packets, so it flatters small MTUs: without the Data Length
/// Extension a 20-byte payload costs a full packet exchange (about 240 kbit/s on the 1M PHY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkRate {
    /// Effective throughput in bits per second (at least 1).
    pub bits_per_second: u64,
}

/// ATT header (3) plus L2CAP header (4): bytes charged on top of each payload.
pub const PACKET_OVERHEAD: usize = 7;

impl LinkRate {
    /// The LE 1M PHY: 700 kbit/s effective.
    pub const LE_1M: Self = Self {
        bits_per_second: 700_000,
    };
    /// The LE 2M PHY: 1.3 Mbit/s effective.
    pub const LE_2M: Self = Self {
        bits_per_second: 1_300_000,
    };

    /// Bytes on the radio for one ATT payload of `payload_len` bytes (one attempt).
    pub fn radio_bytes(payload_len: usize) -> u64 {
        (payload_len + PACKET_OVERHEAD) as u64
    }

    /// Air time of one attempt to send an ATT payload of `payload_len` bytes.
    pub fn airtime(&self, payload_len: usize) -> Duration {
        let bits = u128::from(Self::radio_bytes(payload_len)) * 8;
        let nanos = bits * 1_000_000_000 / u128::from(self.bits_per_second.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Settings of a [`SimRadio`](super::SimRadio).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of every random choice (loss, drops, RSSI): a seed replays the same run.
    pub seed: u64,
    /// Link rate of every link.
    pub rate: LinkRate,
    /// Probability that one transmission attempt of a packet is lost. The link layer
    /// retransmits: a loss costs air time, never order or data.
    pub loss: f64,
    /// Probability, per packet, that the link drops (supervision timeout).
    pub drop_probability: f64,
    /// Attempts per packet before the link gives up and drops (at least 1).
    pub max_attempts: u32,
    /// Time from connect request to a usable link (connection setup and MTU exchange).
    pub connect_latency: Duration,
    /// Queue sizes of every link end.
    pub queues: QueueConfig,
    /// Reports a scan buffers before dropping new ones.
    pub scan_queue: usize,
}

impl Default for SimConfig {
    /// Seed 0, 1M PHY, no loss, no drops, 16 attempts, 50 ms connect, default queues, 64 scan
    /// reports.
    fn default() -> Self {
        Self {
            seed: 0,
            rate: LinkRate::LE_1M,
            loss: 0.0,
            drop_probability: 0.0,
            max_attempts: 16,
            connect_latency: Duration::from_millis(50),
            queues: QueueConfig::default(),
            scan_queue: 64,
        }
    }
}

/// Settings of one simulated device.
#[derive(Clone, Debug)]
pub struct SimDeviceConfig {
    /// The largest ATT MTU this device accepts (23..=517); a link gets the smaller of both
    /// ends' values.
    pub max_mtu: u16,
    /// Most links (both roles together) at once; 7 by default, like Android.
    pub link_cap: usize,
    /// The partition (range) the device starts in; only devices in one partition hear each
    /// other.
    pub partition: u32,
}

impl Default for SimDeviceConfig {
    /// MTU 517, 7 links, partition 0.
    fn default() -> Self {
        Self {
            max_mtu: crate::link::MAX_MTU,
            link_cap: 7,
            partition: 0,
        }
    }
}

impl SimDeviceConfig {
    /// Default settings with this maximum MTU.
    pub fn with_mtu(max_mtu: u16) -> Self {
        Self {
            max_mtu,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airtime_of_presets() {
        // 244 + 7 bytes = 2008 bits: 2.868 ms at 700 kbit/s, 1.544 ms at 1.3 Mbit/s.
        assert_eq!(
            LinkRate::LE_1M.airtime(244),
            Duration::from_nanos(2_868_571)
        );
        assert_eq!(
            LinkRate::LE_2M.airtime(244),
            Duration::from_nanos(1_544_615)
        );
        assert_eq!(LinkRate::radio_bytes(20), 27);
    }
}
