//! Shared by the BLE mesh route tests (simulated radio, BlueZ emulator): each mesh node's end
//! of its link is attached to that node's coordinator, then 20 messages cross with receipts.

use std::time::Duration;

use bitcraps_coordinator::{CoordinatorEvent, EventStream, Priority, TransportCoordinator};
use bitcraps_transport_ble::MeshNode;
use bitcraps_transport_core::Bytes;

/// One side: its mesh node, its coordinator and the coordinator's events.
pub(crate) type Side = (MeshNode, TransportCoordinator, EventStream);

/// Attaches each node's link to its own coordinator (`attach_connection`), then checks that
/// 20 messages from the first to the second arrive once, in order, each with its receipt.
pub(crate) async fn attach_and_exchange(sides: &mut [Side], guard: Duration) {
    for (mesh, coordinator, _) in sides.iter_mut() {
        let link = tokio::time::timeout(guard, mesh.next_connection())
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
    tokio::time::timeout(guard, async {
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
        tokio::time::timeout(guard, r)
            .await
            .expect("receipt in time")
            .expect("delivered");
    }
}
