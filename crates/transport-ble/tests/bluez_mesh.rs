//! Mesh mode on the real stack: `MeshNode`s with both roles (our btleplug central and our
//! bluer peripheral on one adapter each) on three adapters of the BlueZ emulator discover
//! each other, link up (the lower device id dials), carry authenticated messages, and
//! re-link after the emulator drops a link. Skipped, with a message, where the emulator
//! cannot start.

#![cfg(target_os = "linux")]

mod bluez_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_ble::link::{BleAdapter, DualAdapter};
use bitcraps_transport_ble::mesh::Backoff;
use bitcraps_transport_ble::{DeviceId, MeshConfig, MeshConnection, MeshNode, Role};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, PeerId, SharedLimiter};
use bluez_support::*;

struct Node {
    adapter: String,
    device: DeviceId,
    peer: PeerId,
    mesh: MeshNode,
    conns: Vec<MeshConnection>,
}

async fn node(adapter: String, i: u64) -> Node {
    let dual = DualAdapter::new(
        Arc::new(central(&adapter).await),
        Arc::new(peripheral(&adapter).await),
    );
    let device = dual.local_id();
    let identity = LocalIdentity::new(Keypair::generate());
    let peer = identity.peer_id();
    let mut config = MeshConfig::new(format!("node{i}"));
    config.backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(2),
    };
    config.seed = i;
    let mesh = MeshNode::start(
        Arc::new(dual),
        identity,
        ChannelConfig::default(),
        SharedLimiter::unlimited(),
        config,
    )
    .await
    .expect("mesh start");
    Node {
        adapter,
        device,
        peer,
        mesh,
        conns: Vec::new(),
    }
}

/// Live connections of a node: remote device -> connection.
fn live(node: &Node) -> BTreeMap<DeviceId, &MeshConnection> {
    node.conns
        .iter()
        .filter(|c| !c.connection.sender().is_closed())
        .map(|c| (c.device.clone(), c))
        .collect()
}

/// Collects delivered connections until every node has `links` live ones (bounded).
async fn until_linked(nodes: &mut [Node], links: usize) {
    tokio::time::timeout(GUARD, async {
        while nodes.iter().any(|n| live(n).len() < links) {
            let next = futures::future::select_all(
                nodes
                    .iter_mut()
                    .enumerate()
                    .map(|(i, n)| Box::pin(async move { (i, n.mesh.next_connection().await) })),
            );
            let ((i, conn), _, _) = next.await;
            nodes[i].conns.push(conn.expect("mesh running"));
        }
    })
    .await
    .expect("the mesh links up within the guard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_link_up_talk_and_relink_after_a_drop() {
    let Some(emu) = emulator() else { return };
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(node(lease(&emu), i).await);
    }
    until_linked(&mut nodes, 2).await;
    let peers: BTreeMap<DeviceId, PeerId> =
        nodes.iter().map(|n| (n.device.clone(), n.peer)).collect();
    for node in &nodes {
        for (device, c) in live(node) {
            assert_eq!(c.connection.remote_peer(), peers[&device]);
            let expected = if node.device < device {
                Role::Central
            } else {
                Role::Peripheral
            };
            assert_eq!(c.role, expected, "{} -> {device}", node.device);
        }
        assert!(node.mesh.stats().links.iter().all(|l| l.mtu == 247));
    }
    // A message over every link, both ways.
    for node in &nodes {
        for c in live(node).values() {
            c.connection
                .send(format!("from {}", node.device).into_bytes().into())
                .await
                .expect("send");
        }
    }
    for node in &mut nodes {
        let devices: Vec<DeviceId> = live(node).keys().cloned().collect();
        for device in devices {
            let c = node
                .conns
                .iter_mut()
                .rev()
                .find(|c| c.device == device)
                .expect("a connection");
            let got = tokio::time::timeout(GUARD, c.connection.recv())
                .await
                .expect("in time")
                .expect("recv")
                .expect("a message");
            assert_eq!(got, format!("from {device}").into_bytes());
        }
    }
    // The emulator drops the link between nodes 0 and 1: both ends re-link after the backoff.
    let dialer = if nodes[0].device < nodes[1].device {
        0
    } else {
        1
    };
    let before = nodes[dialer].mesh.stats().reconnects;
    emu.drop_link(&nodes[0].adapter, &nodes[1].adapter)
        .expect("drop");
    tokio::time::timeout(GUARD, async {
        loop {
            let next = futures::future::select_all(
                nodes[..2]
                    .iter_mut()
                    .enumerate()
                    .map(|(i, n)| Box::pin(async move { (i, n.mesh.next_connection().await) })),
            );
            let ((i, conn), _, _) = next.await;
            nodes[i].conns.push(conn.expect("mesh running"));
            if live(&nodes[0]).len() == 2 && live(&nodes[1]).len() == 2 {
                return;
            }
        }
    })
    .await
    .expect("re-linked within the guard");
    // The lower id dialed again: a reconnect, after the backoff.
    assert!(nodes[dialer].mesh.stats().reconnects > before);
}
