//! Real coordinators over the mesh: A — B — C in a line over in-memory links (A and C not
//! linked; B relays). A's coordinator reaches C at `mesh://C` when its direct route fails (at
//! the dial, or mid-stream), and
//! the coordinator's session protocol gives exactly-once, per-priority ordered delivery with
//! receipts over two hops; a message to a peer the mesh cannot reach ends as `Undelivered`.
//! Paused time: every wait is on an event, bounded by a guard against hangs only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcraps_coordinator::{
    CoordinatorConfig, CoordinatorEvent, EventStream, Priority, TransportCoordinator,
    UndeliveredReason,
};
use bitcraps_mesh::{MeshTransport, MeshTransportConfig};
use bitcraps_transport_core::backend::{new_connection, IncomingSender, SendItem};
use bitcraps_transport_core::{
    Bytes, ChannelConfig, Connection, ConnectionInfo, Keypair, PeerId, Transport, TransportAddress,
    TransportKind,
};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};

/// A guard against hangs only (virtual time; never a timing assertion).
const GUARD: Duration = Duration::from_secs(3_600);

struct Node {
    key: Keypair,
    mesh: MeshTransport,
    mem: Arc<dyn Transport>,
}

impl Node {
    fn new(net: &MemoryNetwork, config: MeshTransportConfig) -> Self {
        let key = Keypair::generate();
        let mem: Arc<dyn Transport> = Arc::new(MemoryTransport::new(net, key.clone()));
        let mesh = MeshTransport::new(key.clone(), config, vec![mem.clone()]).unwrap();
        Self { key, mesh, mem }
    }

    fn id(&self) -> PeerId {
        self.key.peer_id()
    }

    /// A coordinator over memory (first) and the mesh.
    fn coordinator(&self) -> (TransportCoordinator, EventStream) {
        let mut config = CoordinatorConfig::default();
        config.rate_limits = bitcraps_transport_core::policy::RateLimits::unlimited();
        let c = TransportCoordinator::builder()
            .config(config)
            .transport(self.mem.clone())
            .transport(Arc::new(self.mesh.clone()))
            .build()
            .unwrap();
        let events = c.events().unwrap();
        (c, events)
    }
}

/// Three mesh nodes in a line: A — B — C. With `lossy`, the B — C link loses every fourth
/// message each way (and the count of losses is returned).
async fn line(net: &MemoryNetwork, lossy: bool) -> (Node, Node, Node, Arc<AtomicU64>) {
    let d = MeshTransportConfig::default;
    let (a, b, c) = (
        Node::new(net, d()),
        Node::new(net, d()),
        Node::new(net, d()),
    );
    let at_b = b
        .mesh
        .listen_direct(&TransportAddress::Memory(0))
        .await
        .unwrap();
    a.mesh.dial_direct(&at_b, Some(b.id())).await.unwrap();
    let lost = Arc::new(AtomicU64::new(0));
    if lossy {
        let (to_c, to_b) = lossy_pair(&b.key, &c.key, 4, &lost);
        b.mesh.add_link(to_c).await.unwrap();
        c.mesh.add_link(to_b).await.unwrap();
    } else {
        let at_c = c
            .mesh
            .listen_direct(&TransportAddress::Memory(0))
            .await
            .unwrap();
        b.mesh.dial_direct(&at_c, Some(c.id())).await.unwrap();
    }
    (a, b, c, lost)
}

/// Two connected connections whose messages are carried by pumps that drop every
/// `every`-th one (a stand-in for an authenticated but lossy state).
fn lossy_pair(
    a: &Keypair,
    b: &Keypair,
    every: u64,
    lost: &Arc<AtomicU64>,
) -> (Connection, Connection) {
    let info = |local: PeerId, remote: PeerId, port: u64, outbound: bool| ConnectionInfo {
        local_peer: local,
        remote_peer: remote,
        local_addr: TransportAddress::Memory(port),
        remote_addr: TransportAddress::Memory(port ^ 1),
        kind: TransportKind::Memory,
        outbound,
    };
    let config = ChannelConfig::default();
    let (ca, ia) = new_connection(info(a.peer_id(), b.peer_id(), 10, true), &config);
    let (cb, ib) = new_connection(info(b.peer_id(), a.peer_id(), 11, false), &config);
    tokio::spawn(pump(ia.send_queue, ib.incoming, every, lost.clone()));
    tokio::spawn(pump(ib.send_queue, ia.incoming, every, lost.clone()));
    (ca, cb)
}

async fn pump(
    mut from: tokio::sync::mpsc::Receiver<SendItem>,
    to: IncomingSender,
    every: u64,
    lost: Arc<AtomicU64>,
) {
    let mut n = 0u64;
    while let Some(SendItem::Message(m)) = from.recv().await {
        n += 1;
        if n.is_multiple_of(every) {
            lost.fetch_add(1, Ordering::Relaxed);
        } else {
            to.deliver(m).await;
        }
    }
}

async fn next_event(events: &mut EventStream) -> CoordinatorEvent {
    tokio::time::timeout(GUARD, events.recv())
        .await
        .expect("guard")
        .expect("event stream open")
}

fn msg(i: u32) -> Bytes {
    Bytes::from(format!("{i:06} bet on the pass line"))
}

#[tokio::test(start_paused = true)]
async fn two_hops_through_a_relay_deliver_exactly_once_in_order_with_receipts() {
    two_hops(false).await;
}

/// The same with the relay's link to C losing every fourth packet each way: the coordinator's
/// retransmissions over the lossy path still deliver each message once, in order.
#[tokio::test(start_paused = true)]
async fn two_hops_over_a_lossy_link_still_deliver_exactly_once_in_order() {
    two_hops(true).await;
}

async fn two_hops(lossy: bool) {
    let net = MemoryNetwork::new();
    let (a, b, c, lost) = line(&net, lossy).await;
    let started = tokio::time::Instant::now();
    let (ca, mut ea) = a.coordinator();
    let (cc, mut ec) = c.coordinator();
    let mesh_c = TransportAddress::Mesh(c.id());
    assert_eq!(cc.listen(&mesh_c).await.unwrap(), mesh_c);
    // The preferred direct route goes nowhere: the coordinator fails over to the mesh.
    let dead = TransportAddress::Memory(7_777);
    ca.connect_to_peer(c.id(), vec![dead.clone(), mesh_c.clone()])
        .await
        .unwrap();
    // Every message must fit one directed mesh packet: the coordinator's maximum payload is
    // the mesh's (the smallest of its transports) less the DATA envelope header.
    assert_eq!(
        ca.max_payload(),
        bitcraps_mesh::transport::MAX_VIRTUAL_MESSAGE - bitcraps_coordinator::envelope::DATA_HEADER
    );
    assert_eq!(ca.max_payload(), 953);

    const N: u32 = 300;
    let mut receipts = Vec::new();
    for i in 0..N {
        let priority = if i % 3 == 0 {
            Priority::Interactive
        } else {
            Priority::Bulk
        };
        receipts.push(
            ca.send_with_receipt(c.id(), msg(i), priority)
                .await
                .unwrap(),
        );
    }
    // C's application gets each message once, and each priority's messages in order.
    let mut next = [0u32, 1];
    let mut got = 0;
    while got < N {
        if let CoordinatorEvent::DataReceived { peer, data } = next_event(&mut ec).await {
            assert_eq!(peer, a.id(), "the sender is proven by the mesh signatures");
            let i: u32 = std::str::from_utf8(&data[..6]).unwrap().parse().unwrap();
            let lane = usize::from(!i.is_multiple_of(3));
            assert_eq!(
                i, next[lane],
                "lane {lane}: duplicated, lost or out of order"
            );
            next[lane] += 1;
            while next[lane] < N && next[lane].is_multiple_of(3) == (lane == 1) {
                next[lane] += 1;
            }
            got += 1;
        }
    }
    for r in receipts {
        tokio::time::timeout(GUARD, r)
            .await
            .expect("guard")
            .unwrap();
    }
    let lost = lost.load(Ordering::Relaxed);
    eprintln!(
        "{N} messages over 2 hops in {:?} (virtual), {lost} packets lost on B — C",
        started.elapsed(),
    );
    assert_eq!(lost > 0, lossy, "losses as arranged");
    // The route A used: the mesh, after the memory route's dial failed.
    let mut saw_dial_failure = false;
    loop {
        match next_event(&mut ea).await {
            CoordinatorEvent::DialFailed { route, .. } => {
                assert_eq!(route, dead);
                saw_dial_failure = true;
            }
            CoordinatorEvent::Connected { address, .. } => {
                assert_eq!(address, mesh_c);
                break;
            }
            _ => {}
        }
    }
    assert!(saw_dial_failure);
    // Nothing more reaches C's application: no duplicate after the receipts (retransmissions
    // of the lossy link included).
    tokio::time::sleep(Duration::from_secs(30)).await;
    while let Some(event) = ec.try_recv() {
        assert!(
            !matches!(event, CoordinatorEvent::DataReceived { .. }),
            "a duplicate reached the application: {event:?}"
        );
    }
    let relay = b.mesh.stats().await.unwrap();
    assert!(relay.engine.transmissions >= u64::from(N) / 10, "B relayed");
    assert_eq!(relay.virtual_connections, 0);
    // Nothing was reported undelivered. (On the lossy path, the idle session may since have
    // ended: two PINGs in a row lost, then the mesh route's breaker; see docs/mesh.md.)
    while let Some(event) = ea.try_recv() {
        assert!(
            !matches!(event, CoordinatorEvent::Undelivered { .. }),
            "{event:?}"
        );
    }
}

/// A direct route that dies mid-stream: traffic moves to `mesh://C`, and C's application still
/// gets every message once, in order.
#[tokio::test(start_paused = true)]
async fn a_direct_route_lost_mid_stream_fails_over_to_the_mesh() {
    let net = MemoryNetwork::new();
    let (a, _b, c, _) = line(&net, false).await;
    let (ca, mut ea) = a.coordinator();
    let (cc, mut ec) = c.coordinator();
    let mesh_c = TransportAddress::Mesh(c.id());
    cc.listen(&mesh_c).await.unwrap();
    let direct = cc.listen(&TransportAddress::Memory(0)).await.unwrap();
    ca.connect_to_peer(c.id(), vec![direct.clone(), mesh_c.clone()])
        .await
        .unwrap();
    const N: u32 = 200;
    let mut receipts = Vec::new();
    let mut got = 0;
    for i in 0..N {
        receipts.push(
            ca.send_with_receipt(c.id(), msg(i), Priority::Interactive)
                .await
                .unwrap(),
        );
        if i == N / 2 {
            // Receive the first half over the direct route, then kill it.
            while got <= i {
                if let CoordinatorEvent::DataReceived { data, .. } = next_event(&mut ec).await {
                    assert_eq!(&data[..6], format!("{got:06}").as_bytes());
                    got += 1;
                }
            }
            cc.close_listener(&direct).await.unwrap();
        }
    }
    while got < N {
        if let CoordinatorEvent::DataReceived { data, .. } = next_event(&mut ec).await {
            assert_eq!(&data[..6], format!("{got:06}").as_bytes(), "once, in order");
            got += 1;
        }
    }
    for r in receipts {
        tokio::time::timeout(GUARD, r)
            .await
            .expect("guard")
            .unwrap();
    }
    loop {
        if let CoordinatorEvent::RouteChanged { to, .. } = next_event(&mut ea).await {
            assert_eq!(to, mesh_c);
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    while let Some(event) = ec.try_recv() {
        assert!(
            !matches!(event, CoordinatorEvent::DataReceived { .. }),
            "a duplicate reached the application: {event:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_message_to_an_unreachable_mesh_peer_ends_undelivered() {
    let net = MemoryNetwork::new();
    let (a, _b, _c, _) = line(&net, false).await;
    let (ca, mut ea) = a.coordinator();
    let started = tokio::time::Instant::now();
    let absent = Keypair::generate().peer_id();
    ca.connect_to_peer(absent, vec![TransportAddress::Mesh(absent)])
        .await
        .unwrap();
    let receipt = ca
        .send_with_receipt(absent, msg(1), Priority::Interactive)
        .await
        .unwrap();
    let outcome = tokio::time::timeout(GUARD, receipt).await.expect("guard");
    let reason = outcome.expect_err("nobody acknowledged it");
    assert!(
        matches!(reason, UndeliveredReason::SessionEnded(_)),
        "{reason}"
    );
    loop {
        if let CoordinatorEvent::Undelivered { peer, ids, .. } = next_event(&mut ea).await {
            assert_eq!((peer, ids.len()), (absent, 1));
            eprintln!(
                "undelivered after {:?} (virtual): {reason}",
                started.elapsed()
            );
            break;
        }
    }
}
