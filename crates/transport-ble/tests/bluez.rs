//! End to end through the real Linux stack without a radio: our btleplug central and our
//! bluer peripheral, each on its own adapter of the BlueZ emulator (`tools/bluez-emu`),
//! speaking real D-Bus to it. Skipped, with a message, where the emulator cannot start.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_ble::central::{CentralAdapter, CentralConfig};
use bitcraps_transport_ble::emulator::BluezEmulator;
use bitcraps_transport_ble::link::BleAdapter;
use bitcraps_transport_ble::peripheral::{PeripheralAdapter, PeripheralConfig};
use bitcraps_transport_ble::{uuids, BleTransport, DeviceId};
use bitcraps_transport_core::{Keypair, Transport};

const GUARD: Duration = Duration::from_secs(30);

fn emulator() -> Option<Arc<BluezEmulator>> {
    match BluezEmulator::shared(24, 247) {
        Ok(emulator) => Some(emulator),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

async fn central(name: String) -> CentralAdapter {
    CentralAdapter::new(CentralConfig {
        adapter_name: Some(name),
        ..CentralConfig::default()
    })
    .await
    .expect("central adapter")
}

async fn peripheral(name: String) -> PeripheralAdapter {
    PeripheralAdapter::new(PeripheralConfig {
        adapter_name: Some(name),
        ..PeripheralConfig::default()
    })
    .await
    .expect("peripheral adapter")
}

/// Scans until `wanted` is reported.
async fn discover(central: &CentralAdapter, wanted: &DeviceId) {
    let mut scan = central.scan(uuids::SERVICE).await.expect("scan");
    tokio::time::timeout(GUARD, async {
        while let Some(found) = scan.next_device().await {
            if &found.id == wanted {
                return;
            }
        }
        panic!("scan ended");
    })
    .await
    .expect("the peripheral is discovered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_messages_both_ways() {
    let Some(emu) = emulator() else { return };
    let (c, p) = (emu.lease().unwrap(), emu.lease().unwrap());
    let server = BleTransport::new(Arc::new(peripheral(p).await), Keypair::generate());
    let mut listener = server
        .listen(&"ble://local".parse().unwrap())
        .await
        .expect("listen");
    let central = central(c).await;
    let target = DeviceId::new(match listener.local_addr() {
        bitcraps_transport_core::TransportAddress::Bluetooth(id) => id.clone(),
        other => panic!("{other}"),
    });
    discover(&central, &target).await;
    let client = BleTransport::new(Arc::new(central), Keypair::generate());
    let mut conn = client
        .dial(listener.local_addr(), Some(server.local_peer_id()))
        .await
        .expect("dial");
    let mut accepted = tokio::time::timeout(GUARD, listener.accept_connection())
        .await
        .expect("accept in time")
        .expect("accept");
    assert_eq!(accepted.remote_peer(), client.local_peer_id());
    let big = vec![0xa5u8; 5000];
    conn.send(big.clone().into()).await.expect("send");
    assert_eq!(
        accepted.recv().await.expect("recv").as_deref(),
        Some(&big[..])
    );
    accepted.send("pong".into()).await.expect("send back");
    assert_eq!(
        conn.recv().await.expect("recv back").as_deref(),
        Some(&b"pong"[..])
    );
    // The traffic went through BlueZ's socket hand-over, and both ends use the MTU BlueZ
    // negotiated (247, the emulator's default here), not the central's fallback of 23.
    let stats = emu.stats().expect("stats");
    assert!(
        stats.get("acquire_write").copied().unwrap_or(0) >= 1,
        "{stats:?}"
    );
    assert!(
        stats.get("acquire_notify").copied().unwrap_or(0) >= 1,
        "{stats:?}"
    );
    assert_eq!(client.link_stats()[0].mtu, 247);
    assert_eq!(server.link_stats()[0].mtu, 247);
}
