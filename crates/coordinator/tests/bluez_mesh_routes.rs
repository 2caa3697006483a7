//! BLE mesh mode on the real stack, handed to the coordinator: two `MeshNode`s (our btleplug
//! central and bluer peripheral on one emulated adapter each) link up through the BlueZ
//! emulator, each end of the link is attached to that node's coordinator as a route
//! (`attach_connection`), and the coordinators exchange messages over it once, in order, with
//! receipts. Skipped, with a message, where the emulator cannot start.

#![cfg(target_os = "linux")]

mod mesh_routes;

use std::sync::Arc;
use std::time::Duration;

use bitcraps_coordinator::TransportCoordinator;
use bitcraps_transport_ble::central::{CentralAdapter, CentralConfig};
use bitcraps_transport_ble::emulator::BluezEmulator;
use bitcraps_transport_ble::link::DualAdapter;
use bitcraps_transport_ble::peripheral::{PeripheralAdapter, PeripheralConfig};
use bitcraps_transport_ble::{BleTransport, MeshConfig, MeshNode};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter};

/// Bound on every step that waits.
const GUARD: Duration = Duration::from_secs(30);

/// The next adapter of the emulator, with our btleplug central and bluer peripheral on it.
async fn adapter_roles(emu: &BluezEmulator) -> (CentralAdapter, PeripheralAdapter) {
    let name = emu.lease().expect("the emulator has adapters left");
    let central = CentralAdapter::new(CentralConfig {
        adapter_name: Some(name.clone()),
        ..CentralConfig::default()
    });
    let peripheral = PeripheralAdapter::new(PeripheralConfig {
        adapter_name: Some(name),
        ..PeripheralConfig::default()
    });
    (
        central.await.expect("central adapter"),
        peripheral.await.expect("peripheral adapter"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_links_through_bluez_carry_coordinator_traffic() {
    let emu = match BluezEmulator::shared(4, 247) {
        Ok(emu) => emu,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let mut sides = Vec::new();
    for i in 0..2u8 {
        let (central, peripheral) = adapter_roles(&emu).await;
        let dual = Arc::new(DualAdapter::new(Arc::new(central), Arc::new(peripheral)));
        let secret = [0x40 + i; 32];
        let mut config = MeshConfig::new(format!("table{i}"));
        config.seed = u64::from(i);
        let mesh = MeshNode::start(
            dual.clone(),
            LocalIdentity::new(Keypair::from_secret_bytes(secret)),
            ChannelConfig::default(),
            SharedLimiter::unlimited(),
            config,
        )
        .await
        .expect("mesh start");
        let ble = BleTransport::new(dual, Keypair::from_secret_bytes(secret));
        let coordinator = TransportCoordinator::builder()
            .transport(Arc::new(ble))
            .build()
            .expect("coordinator");
        let events = coordinator.events().expect("events");
        sides.push((mesh, coordinator, events));
    }
    mesh_routes::attach_and_exchange(&mut sides, GUARD).await;
}
