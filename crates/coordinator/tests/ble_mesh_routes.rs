//! Mesh-mode links handed to the coordinator as routes (simulated radio, paused time): two
//! `MeshNode`s link up, each side attaches its authenticated `MeshConnection` to its own
//! coordinator with `attach_connection`, and the coordinators exchange messages over it with
//! their delivery guarantee (once, in order, receipts).

use std::sync::Arc;
use std::time::Duration;

use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
use bitcraps_transport_ble::sim::{SimConfig, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::{BleTransport, MeshConfig, MeshNode};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{Bytes, ChannelConfig, Keypair, SharedLimiter};

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
    // Each node delivers its end of the link; each end goes to its coordinator.
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
        let r = a
            .send_with_receipt(pb, Bytes::from(i.to_be_bytes().to_vec()), Priority::Bulk)
            .await
            .expect("accepted");
        receipts.push(r);
    }
    let mut got = Vec::new();
    let events = &mut sides[1].2;
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
