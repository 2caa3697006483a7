//! BLE mesh mode on the real stack, handed to the coordinator: two `MeshNode`s (our btleplug
//! central and bluer peripheral on one emulated adapter each) link up through the BlueZ
//! emulator, each end of the link is attached to that node's coordinator as a route
//! (`attach_connection`), and the coordinators exchange messages over it once, in order, with
//! receipts. Skipped, with a message, where the emulator cannot start.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::Duration;

use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
use bitcraps_transport_ble::central::{CentralAdapter, CentralConfig};
use bitcraps_transport_ble::emulator::BluezEmulator;
use bitcraps_transport_ble::link::DualAdapter;
use bitcraps_transport_ble::peripheral::{PeripheralAdapter, PeripheralConfig};
use bitcraps_transport_ble::{BleTransport, MeshConfig, MeshNode};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{Bytes, ChannelConfig, Keypair, SharedLimiter};

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
    for (mesh, coordinator, _) in &mut sides {
        let link = tokio::time::timeout(GUARD, mesh.next_connection())
            .await
            .expect("a link in time")
            .expect("mesh running");
        coordinator
            .attach_connection(link.connection)
            .await
            .expect("attached");
    }
    let (a, b) = (sides[0].1.clone(), sides[1].1.clone());
    let pb = b.local_peer_id();
    let mut receipts = Vec::new();
    for i in 0..20u32 {
        let payload = Bytes::from(i.to_be_bytes().to_vec());
        receipts.push(
            a.send_with_receipt(pb, payload, Priority::Bulk)
                .await
                .expect("accepted"),
        );
    }
    let events = &mut sides[1].2;
    let mut got = Vec::new();
    tokio::time::timeout(GUARD, async {
        while got.len() < 20 {
            if let Some(CoordinatorEvent::DataReceived { data, .. }) = events.recv().await {
                got.push(u32::from_be_bytes(data[..4].try_into().expect("4 bytes")));
            }
        }
    })
    .await
    .expect("every message in time");
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    for r in receipts {
        tokio::time::timeout(GUARD, r)
            .await
            .expect("receipt in time")
            .expect("delivered");
    }
}
