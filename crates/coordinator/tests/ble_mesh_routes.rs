//! Mesh-mode links handed to the coordinator as routes (simulated radio, paused time): two
//! `MeshNode`s link up, each side attaches its authenticated `MeshConnection` to its own
//! coordinator with `attach_connection`, and the coordinators exchange messages over it with
//! their delivery guarantee (once, in order, receipts).

mod mesh_routes;

use std::sync::Arc;
use std::time::Duration;

use bitcraps_coordinator::TransportCoordinator;
use bitcraps_transport_ble::sim::{SimConfig, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::{BleTransport, MeshConfig, MeshNode};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter};

const GUARD: Duration = Duration::from_secs(600);

#[tokio::test(start_paused = true)]
async fn mesh_links_carry_coordinator_traffic() {
    let radio = SimRadio::new(SimConfig::default());
    let mut sides = Vec::new();
    for i in 0..2u8 {
        let device = Arc::new(radio.add_device(SimDeviceConfig::default()));
        let secret = [i + 1; 32];
        let mut config = MeshConfig::new(format!("player{i}"));
        config.seed = u64::from(i);
        let mesh = MeshNode::start(
            device.clone(),
            LocalIdentity::new(Keypair::from_secret_bytes(secret)),
            ChannelConfig::default(),
            SharedLimiter::unlimited(),
            config,
        )
        .await
        .expect("mesh start");
        // The coordinator gets a BLE transport of the same identity on the same device, so
        // `ble://` connections are its own kind.
        let ble = BleTransport::new(device.clone(), Keypair::from_secret_bytes(secret));
        let coordinator = TransportCoordinator::builder()
            .transport(Arc::new(ble))
            .build()
            .expect("coordinator");
        let events = coordinator.events().expect("events");
        sides.push((mesh, coordinator, events));
    }
    mesh_routes::attach_and_exchange(&mut sides, GUARD).await;
}
