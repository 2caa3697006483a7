//! Fixed 128-bit UUIDs of the BitCraps GATT service and its two characteristics.
//!
//! The three share one randomly drawn base and differ only in the first 32-bit field (the same
//! scheme as the Nordic UART service), so they are easy to recognise in a sniffer trace.
//! They must never change: every device on a table has to agree on them.

use uuid::Uuid;

/// The BitCraps GATT service. Peripherals advertise it; centrals scan for it.
pub const SERVICE: Uuid = Uuid::from_u128(0xefad10ec_0a50_4d22_a294_3390e2d331d2);

/// The write characteristic: central -> peripheral, written with write-without-response
/// (ATT Write Command), one link-layer payload per write.
pub const WRITE_CHARACTERISTIC: Uuid = Uuid::from_u128(0xefad10ed_0a50_4d22_a294_3390e2d331d2);

/// The notify characteristic: peripheral -> central, one link-layer payload per
/// notification (ATT Handle Value Notification), sent to each subscribed central separately.
pub const NOTIFY_CHARACTERISTIC: Uuid = Uuid::from_u128(0xefad10ee_0a50_4d22_a294_3390e2d331d2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_distinct_and_stable() {
        assert_ne!(SERVICE, WRITE_CHARACTERISTIC);
        assert_ne!(SERVICE, NOTIFY_CHARACTERISTIC);
        assert_ne!(WRITE_CHARACTERISTIC, NOTIFY_CHARACTERISTIC);
        assert_eq!(SERVICE.to_string(), "efad10ec-0a50-4d22-a294-3390e2d331d2");
    }
}
