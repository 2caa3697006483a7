//! BLE discovery on the simulated radio (paused time, nothing leaves the process): two mesh
//! nodes advertise and scan; each authenticated link is attached to its side's coordinator as
//! a route and the peer reported `PeerDiscovered` over BLE; the coordinators exchange a
//! message over it with a receipt; when one side goes away, the other reports it `PeerLost`.

#![cfg(feature = "ble")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bitcraps_coordinator::{CoordinatorEvent, DiscoverySource, EventStream, TransportCoordinator};
use bitcraps_discovery::ble::BleDiscovery;
use bitcraps_discovery::{Discovery, DiscoveryConfig};
use bitcraps_transport_ble::sim::{SimConfig, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::{BleTransport, MeshConfig, MeshNode};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, PeerId, SharedLimiter, TransportAddress};

/// A bound on each wait (virtual time: the clock is paused and jumps ahead when idle).
const GUARD: Duration = Duration::from_secs(600);

struct Side {
    coordinator: TransportCoordinator,
    events: EventStream,
    discovery: Discovery,
    _ble: BleDiscovery,
}

async fn side(radio: &SimRadio, i: u8) -> Side {
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
    // The coordinator's BLE transport has the same identity on the same device.
    let ble = BleTransport::new(device, Keypair::from_secret_bytes(secret));
    let coordinator = TransportCoordinator::builder()
        .transport(Arc::new(ble))
        .build()
        .expect("coordinator");
    let events = coordinator.events().expect("events");
    let discovery = Discovery::start(coordinator.clone(), DiscoveryConfig::default());
    let ble = BleDiscovery::start(mesh, coordinator.clone(), &discovery);
    Side {
        coordinator,
        events,
        discovery,
        _ble: ble,
    }
}

/// Waits for the first event `pick` accepts.
async fn wait_event<T>(
    events: &mut EventStream,
    pick: impl FnMut(&CoordinatorEvent) -> Option<T>,
) -> T {
    common::wait_event(events, GUARD, pick).await
}

fn discovered(peer: PeerId) -> impl FnMut(&CoordinatorEvent) -> Option<Vec<TransportAddress>> {
    move |e| match e {
        CoordinatorEvent::PeerDiscovered {
            peer: p,
            routes,
            source: DiscoverySource::Ble,
        } if *p == peer => Some(routes.clone()),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn ble_links_are_discovered_attached_and_lost() {
    let radio = SimRadio::new(SimConfig::default());
    let mut a = side(&radio, 0).await;
    let mut b = side(&radio, 1).await;
    let (pa, pb) = (a.coordinator.local_peer_id(), b.coordinator.local_peer_id());

    // Each side hears the other over BLE, on a ble:// route, and already has it as a peer
    // (the link's handshake proved the id before it was reported).
    let routes = wait_event(&mut a.events, discovered(pb)).await;
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].scheme(), "ble");
    assert!(a.coordinator.peers().contains(&pb));
    wait_event(&mut b.events, discovered(pa)).await;
    assert!(a.discovery.peers().iter().any(|p| p.peer == pb));

    common::bet_crosses(&a.coordinator, pb, &mut b.events, GUARD).await;

    // b goes away: once a's coordinator no longer has it, a's BLE source withdraws it.
    b.coordinator.shutdown(Duration::from_secs(1)).await;
    drop(b);
    wait_event(&mut a.events, |e| {
        matches!(e, CoordinatorEvent::PeerLost { peer, source: DiscoverySource::Ble } if *peer == pb)
            .then_some(())
    })
    .await;
    assert!(a.discovery.peers().iter().all(|p| p.peer != pb));
}
