//! Shared by the test binaries that run through the BlueZ emulator: one emulator per binary
//! (the bus address is process-wide), adapters leased per test, and the steps every test
//! takes (open the adapters, listen, discover, dial). Each binary uses a part of it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_ble::central::{CentralAdapter, CentralConfig};
use bitcraps_transport_ble::emulator::BluezEmulator;
use bitcraps_transport_ble::link::BleAdapter;
use bitcraps_transport_ble::peripheral::{PeripheralAdapter, PeripheralConfig};
use bitcraps_transport_ble::{uuids, BleTransport, DeviceId};
use bitcraps_transport_core::{Connection, Keypair, Listener, Transport, TransportAddress};

/// Bound on every step that waits.
pub(crate) const GUARD: Duration = Duration::from_secs(30);

/// This binary's emulator (40 adapters, MTU 247 unless a test sets another), or `None`
/// after printing why it cannot run here.
pub(crate) fn emulator() -> Option<Arc<BluezEmulator>> {
    match BluezEmulator::shared(40, 247) {
        Ok(emulator) => Some(emulator),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// The next free adapter's name.
pub(crate) fn lease(emu: &BluezEmulator) -> String {
    emu.lease().expect("the emulator has adapters left")
}

/// Our btleplug central on adapter `name`.
pub(crate) async fn central(name: &str) -> CentralAdapter {
    CentralAdapter::new(CentralConfig {
        adapter_name: Some(name.to_string()),
        ..CentralConfig::default()
    })
    .await
    .expect("central adapter")
}

/// Our bluer peripheral on adapter `name`.
pub(crate) async fn peripheral(name: &str) -> PeripheralAdapter {
    PeripheralAdapter::new(PeripheralConfig {
        adapter_name: Some(name.to_string()),
        ..PeripheralConfig::default()
    })
    .await
    .expect("peripheral adapter")
}

/// A peripheral transport on `name`, listening; with its listener and its address.
pub(crate) async fn listening(name: &str) -> (BleTransport, Box<dyn Listener>, DeviceId) {
    let server = BleTransport::new(Arc::new(peripheral(name).await), Keypair::generate());
    let listener = server
        .listen(&"ble://local".parse().expect("address"))
        .await
        .expect("listen");
    let TransportAddress::Bluetooth(id) = listener.local_addr() else {
        panic!("not a ble address: {}", listener.local_addr());
    };
    let id = DeviceId::new(id.as_str());
    (server, listener, id)
}

/// Scans for the BitCraps service until `wanted` is reported.
pub(crate) async fn discover(central: &CentralAdapter, wanted: &DeviceId) {
    let mut scan = central.scan(uuids::SERVICE).await.expect("scan");
    tokio::time::timeout(GUARD, async {
        while let Some(found) = scan.next_device().await {
            if &found.id == wanted {
                return;
            }
        }
        panic!("scan ended before {wanted} was seen");
    })
    .await
    .expect("the peripheral is discovered");
}

/// A central transport on `name` that has discovered `target`.
pub(crate) async fn dialer(name: &str, target: &DeviceId) -> BleTransport {
    let central = central(name).await;
    discover(&central, target).await;
    BleTransport::new(Arc::new(central), Keypair::generate())
}

/// Dials `target` from `client` and accepts on `listener`: both ends of one connection.
pub(crate) async fn connect(
    client: &BleTransport,
    server: &BleTransport,
    listener: &mut Box<dyn Listener>,
    target: &DeviceId,
) -> (Connection, Connection) {
    let addr = TransportAddress::Bluetooth(target.to_string());
    let conn = client
        .dial(&addr, Some(server.local_peer_id()))
        .await
        .expect("dial");
    let accepted = tokio::time::timeout(GUARD, listener.accept_connection())
        .await
        .expect("accept in time")
        .expect("accept");
    assert_eq!(accepted.remote_peer(), client.local_peer_id());
    (conn, accepted)
}
