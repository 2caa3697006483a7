//! mDNS discovery end to end, every packet on the loopback interface: two nodes find each
//! other, auto-connect and exchange a message, and a goodbye is reported as `PeerLost`; a
//! forged announcement (a peer id whose route leads to someone else) is discovered but never
//! connected, because the handshake proves who answers; garbage TXT records produce nothing;
//! a flood of announced instances never grows the table past its cap.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bitcraps_coordinator::{CoordinatorEvent, DiscoverySource, EventStream, TransportCoordinator};
use bitcraps_discovery::{txt, Discovery, DiscoveryConfig, Interfaces, MdnsConfig, MdnsDiscovery};
use bitcraps_transport_core::{Keypair, PeerId, Ticket, TransportAddress};
use bitcraps_transport_tcp::TcpTransport;
use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};

/// A bound on each wait (real time: mDNS runs on its own thread).
const GUARD: Duration = Duration::from_secs(30);

/// A service type of this test's own, so concurrent tests never see each other.
fn service_type(tag: &str) -> String {
    format!("_bc{tag}{:04x}._udp.local.", std::process::id() & 0xffff)
}

fn mdns_config(service_type: &str, announce: bool) -> MdnsConfig {
    let mut c = MdnsConfig::default();
    c.service_type = service_type.to_string();
    c.interfaces = Interfaces::Loopback;
    c.announce = announce;
    c
}

struct Node {
    coordinator: TransportCoordinator,
    events: EventStream,
    discovery: Discovery,
    route: TransportAddress,
}

async fn node(config: DiscoveryConfig) -> Node {
    let tcp = TcpTransport::new(Keypair::generate());
    let coordinator = TransportCoordinator::builder()
        .transport(Arc::new(tcp))
        .build()
        .expect("coordinator");
    let events = coordinator.events().expect("events");
    let route = coordinator
        .listen(&"tcp://127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("listen");
    let discovery = Discovery::start(coordinator.clone(), config);
    Node {
        coordinator,
        events,
        discovery,
        route,
    }
}

fn ticket(node: &Node) -> Ticket {
    Ticket::new(node.coordinator.local_peer_id(), vec![node.route.clone()]).expect("ticket")
}

/// Waits for the first event `pick` accepts.
async fn wait_event<T>(
    events: &mut EventStream,
    pick: impl FnMut(&CoordinatorEvent) -> Option<T>,
) -> T {
    common::wait_event(events, GUARD, pick).await
}

/// A raw mDNS responder on loopback announcing whatever TXT pairs it is given.
fn raw_responder() -> ServiceDaemon {
    let d = ServiceDaemon::new().expect("daemon");
    d.disable_interface(IfKind::All).expect("disable");
    d.enable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])
        .expect("enable");
    d
}

fn register(d: &ServiceDaemon, ty: &str, name: &str, pairs: &[(String, String)]) {
    let props: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let info = ServiceInfo::new(ty, name, &format!("{name}.local."), "", 9, &props[..])
        .expect("service info")
        .enable_addr_auto();
    d.register(info).expect("register");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_find_each_other_connect_and_say_goodbye() {
    let ty = service_type("a");
    let mut alice = node(DiscoveryConfig::auto_connect()).await;
    let mut bob = node(DiscoveryConfig::auto_connect()).await;
    let (a, b) = (
        alice.coordinator.local_peer_id(),
        bob.coordinator.local_peer_id(),
    );
    let _ma = MdnsDiscovery::start(
        &alice.discovery,
        Some(&ticket(&alice)),
        mdns_config(&ty, true),
    )
    .expect("alice mdns");
    let mb = MdnsDiscovery::start(&bob.discovery, Some(&ticket(&bob)), mdns_config(&ty, true))
        .expect("bob mdns");
    let bob_route = bob.route.clone();
    let routes = wait_event(&mut alice.events, |e| match e {
        CoordinatorEvent::PeerDiscovered {
            peer,
            routes,
            source: DiscoverySource::Mdns,
        } if *peer == b => Some(routes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(routes, vec![bob_route]);
    // Bob hears Alice too, and the auto-connect of one of them connects both.
    wait_event(&mut bob.events, |e| {
        matches!(e, CoordinatorEvent::PeerDiscovered { peer, .. } if *peer == a).then_some(())
    })
    .await;
    tokio::time::timeout(GUARD, async {
        while !alice.coordinator.peers().contains(&b) {
            if let Some(CoordinatorEvent::Connected { .. }) = alice.events.recv().await {}
        }
    })
    .await
    .expect("connected in time");
    common::bet_crosses(&alice.coordinator, b, &mut bob.events, GUARD).await;
    // Bob says goodbye: Alice reports him lost (his connection is not touched by that).
    mb.shutdown().await;
    wait_event(&mut alice.events, |e| {
        matches!(e, CoordinatorEvent::PeerLost { peer, .. } if *peer == b).then_some(())
    })
    .await;
    assert!(alice.discovery.peers().iter().all(|p| p.peer != b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_announcement_is_never_connected_and_garbage_is_ignored() {
    let ty = service_type("f");
    let mut alice = node(DiscoveryConfig::auto_connect()).await;
    let carol = node(DiscoveryConfig::default()).await;
    let _ma =
        MdnsDiscovery::start(&alice.discovery, None, mdns_config(&ty, false)).expect("alice mdns");
    let responder = raw_responder();
    // Garbage first: no version, a bad chunk count, a damaged ticket.
    register(&responder, &ty, "junk0", &[("x".into(), "y".into())]);
    register(
        &responder,
        &ty,
        "junk1",
        &[("v".into(), "1".into()), ("n".into(), "99".into())],
    );
    let mut damaged = txt::encode(&ticket(&carol)).expect("encode");
    // Change one character for another (never for itself, which would leave it intact).
    let was = damaged[2].1.as_bytes()[10];
    damaged[2]
        .1
        .replace_range(10..11, if was == b'A' { "B" } else { "A" });
    register(&responder, &ty, "junk2", &damaged);
    // Then a forgery: Mallory's peer id, but the route is Carol's listener.
    let mallory: PeerId = Keypair::generate().peer_id();
    let forged = Ticket::new(mallory, vec![carol.route.clone()]).expect("ticket");
    register(
        &responder,
        &ty,
        "forged",
        &txt::encode(&forged).expect("encode"),
    );

    let mut discovered = Vec::new();
    let error = wait_event(&mut alice.events, |e| match e {
        CoordinatorEvent::PeerDiscovered { peer, .. } => {
            discovered.push(*peer);
            None
        }
        CoordinatorEvent::Connected { peer, .. } => panic!("connected to {peer}"),
        CoordinatorEvent::DialFailed { peer, error, .. } if *peer == mallory => Some(error.clone()),
        _ => None,
    })
    .await;
    // The dial reached Carol, whose handshake proved she is not Mallory.
    match error {
        bitcraps_transport_core::Error::PeerMismatch { expected, actual } => {
            assert_eq!(expected, mallory);
            assert_eq!(actual, carol.coordinator.local_peer_id());
        }
        other => panic!("expected PeerMismatch, got {other}"),
    }
    assert_eq!(discovered, vec![mallory], "garbage produced no discovery");
    let _ = responder.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_instances_never_grows_the_table_past_its_cap() {
    let ty = service_type("x");
    let mut config = DiscoveryConfig::default();
    config.max_known = 8;
    config.new_peer_burst = 8;
    let alice = node(config).await;
    let _ma =
        MdnsDiscovery::start(&alice.discovery, None, mdns_config(&ty, false)).expect("alice mdns");
    let responder = raw_responder();
    const FLOOD: u64 = 40;
    for i in 0..FLOOD {
        let fake = Ticket::new(
            Keypair::generate().peer_id(),
            vec![format!("tcp://127.0.0.1:{}", 1 + i).parse().expect("route")],
        )
        .expect("ticket");
        register(
            &responder,
            &ty,
            &format!("fake{i}"),
            &txt::encode(&fake).expect("encode"),
        );
    }
    tokio::time::timeout(
        GUARD,
        alice
            .discovery
            .wait_stats(|s| s.announcements + s.refused_rate + s.refused_full >= FLOOD),
    )
    .await
    .expect("every fake instance heard in time");
    let s = alice.discovery.stats();
    assert!(alice.discovery.peers().len() <= 8);
    assert!(
        s.refused_rate > 0,
        "the admission bucket slowed the flood: {s:?}"
    );
    let _ = responder.shutdown();
}
