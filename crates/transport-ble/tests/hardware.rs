//! Tests against a real Bluetooth adapter (btleplug central, bluer peripheral).
//!
//! This build machine has no Bluetooth at all (no `/dev/vhci`, no `AF_BLUETOOTH`), so the
//! tests that need a radio are `#[ignore = "needs a Bluetooth adapter"]`. On a Linux machine
//! with BlueZ and a powered adapter:
//!
//! ```text
//! cargo test -p bitcraps-transport-ble --test hardware -- --ignored
//! ```
//!
//! `central_talks_to_a_peer` also needs `BITCRAPS_BLE_PEER=<device id>` naming a BitCraps
//! peripheral in range that echoes what it reads (for example this crate's peripheral role on
//! a second machine). The tests that are not ignored check that a missing adapter is a typed
//! error, never a panic or a hang.

use std::time::Duration;

use bitcraps_transport_ble::central::{CentralAdapter, CentralConfig};
use bitcraps_transport_ble::link::BleAdapter;
use bitcraps_transport_ble::{uuids, BleStream, DeviceId, LinkError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GUARD: Duration = Duration::from_secs(30);

#[tokio::test]
async fn central_without_an_adapter_is_a_typed_error() {
    let opened = tokio::time::timeout(GUARD, CentralAdapter::new(CentralConfig::default()))
        .await
        .expect("opening the adapter must not hang");
    match opened {
        Ok(adapter) => {
            let refused = adapter
                .start_advertising(bitcraps_transport_ble::AdvertisingConfig::new("x"))
                .await;
            assert!(matches!(refused, Err(LinkError::Unsupported { .. })));
        }
        Err(err) => assert!(matches!(err, LinkError::AdapterUnavailable(_)), "{err:?}"),
    }
}

#[tokio::test]
#[ignore = "needs a Bluetooth adapter"]
async fn central_opens_the_adapter_and_scans() {
    let central = CentralAdapter::new(CentralConfig::default())
        .await
        .expect("adapter");
    let mut scan = central.scan(uuids::SERVICE).await.expect("scan");
    // Any BitCraps advertiser nearby is reported; none nearby is fine too.
    if let Ok(Some(found)) = tokio::time::timeout(Duration::from_secs(10), scan.next_device()).await
    {
        assert!(!found.id.as_str().is_empty());
    }
}

#[tokio::test]
#[ignore = "needs a Bluetooth adapter"]
async fn central_talks_to_a_peer() {
    let Ok(peer) = std::env::var("BITCRAPS_BLE_PEER") else {
        panic!("set BITCRAPS_BLE_PEER to the device id of an echoing BitCraps peripheral");
    };
    let central = CentralAdapter::new(CentralConfig::default())
        .await
        .expect("adapter");
    let mut scan = central.scan(uuids::SERVICE).await.expect("scan");
    let peer = DeviceId::new(peer);
    tokio::time::timeout(GUARD, async {
        while let Some(found) = scan.next_device().await {
            if found.id == peer {
                break;
            }
        }
    })
    .await
    .expect("peer advertises");
    drop(scan);
    let link = central.connect(&peer, GUARD).await.expect("connect");
    assert_eq!(link.mtu(), CentralConfig::default().mtu);
    let mut stream = BleStream::new(link);
    let message = vec![0x5a; 1000];
    stream.write_all(&message).await.expect("write");
    stream.flush().await.expect("flush");
    let mut echo = vec![0; message.len()];
    tokio::time::timeout(GUARD, stream.read_exact(&mut echo))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(echo, message);
}

#[cfg(all(feature = "peripheral", target_os = "linux"))]
mod peripheral {
    use super::*;
    use bitcraps_transport_ble::peripheral::{PeripheralAdapter, PeripheralConfig};
    use bitcraps_transport_ble::AdvertisingConfig;

    #[tokio::test]
    async fn peripheral_without_an_adapter_is_a_typed_error() {
        let opened =
            tokio::time::timeout(GUARD, PeripheralAdapter::new(PeripheralConfig::default()))
                .await
                .expect("opening the adapter must not hang");
        if let Err(err) = opened {
            assert!(matches!(err, LinkError::AdapterUnavailable(_)), "{err:?}");
        }
    }

    #[tokio::test]
    #[ignore = "needs a Bluetooth adapter"]
    async fn peripheral_advertises_and_echoes() {
        let peripheral = PeripheralAdapter::new(PeripheralConfig::default())
            .await
            .expect("adapter");
        let mut incoming = peripheral.listen().await.expect("listen");
        assert!(matches!(
            peripheral.listen().await,
            Err(LinkError::AlreadyListening)
        ));
        peripheral
            .start_advertising(AdvertisingConfig::new("bitcraps-test"))
            .await
            .expect("advertise");
        // Echo one central's stream until it ends (connect from a phone or `central_talks_to_a_peer`).
        let link = tokio::time::timeout(Duration::from_secs(60), incoming.accept())
            .await
            .expect("a central connects")
            .expect("link");
        assert!(link.max_payload() <= usize::from(link.mtu()) - 3);
        let stream = BleStream::new(link);
        let (mut r, mut w) = tokio::io::split(stream);
        let mut buf = vec![0; 1000];
        r.read_exact(&mut buf).await.expect("read");
        w.write_all(&buf).await.expect("echo");
        w.flush().await.expect("flush");
        peripheral.stop_advertising().await.expect("stop");
    }
}
