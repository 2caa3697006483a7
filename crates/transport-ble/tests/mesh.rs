//! Mesh mode on the simulated radio, under paused time: four devices in range link up to the
//! cap, a dropped link comes back after the backoff, and a partition heals.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_ble::mesh::Backoff;
use bitcraps_transport_ble::sim::{SimConfig, SimDevice, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::{DeviceId, MeshConfig, MeshConnection, MeshNode, Role};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{Bytes, ChannelConfig, Keypair, PeerId, SharedLimiter};
use tokio::time::Instant;

const GUARD: Duration = Duration::from_secs(600);

struct Node {
    device: Arc<SimDevice>,
    peer: PeerId,
    mesh: MeshNode,
    conns: Vec<MeshConnection>,
}

fn backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(400),
        max: Duration::from_secs(4),
    }
}

async fn nodes(radio: &SimRadio, n: usize, max_links: Option<usize>) -> Vec<Node> {
    let mut out = Vec::new();
    for i in 0..n {
        let device = Arc::new(radio.add_device(SimDeviceConfig::default()));
        let identity = LocalIdentity::new(Keypair::generate());
        let peer = identity.peer_id();
        let mut config = MeshConfig::new(format!("node{i}"));
        config.max_links = max_links;
        config.backoff = backoff();
        config.seed = i as u64;
        let mesh = MeshNode::start(
            device.clone(),
            identity,
            ChannelConfig::default(),
            SharedLimiter::unlimited(),
            config,
        )
        .await
        .expect("mesh start");
        out.push(Node {
            device,
            peer,
            mesh,
            conns: Vec::new(),
        });
    }
    out
}

/// Waits until `count` more connections were delivered across all nodes.
async fn collect(nodes: &mut [Node], count: usize) {
    tokio::time::timeout(GUARD, async {
        for _ in 0..count {
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
    .expect("connections within the guard");
}

/// Waits until the mesh is quiet: no connection delivered for `quiet` of virtual time.
async fn settle(nodes: &mut [Node], quiet: Duration) {
    loop {
        let next = futures::future::select_all(
            nodes
                .iter_mut()
                .enumerate()
                .map(|(i, n)| Box::pin(async move { (i, n.mesh.next_connection().await) })),
        );
        let next = tokio::time::timeout(quiet, next)
            .await
            .map(|((i, conn), _, _)| (i, conn));
        match next {
            Ok((i, conn)) => nodes[i].conns.push(conn.expect("mesh running")),
            Err(_) => return,
        }
    }
}

/// Live connections per node: remote device -> connection.
fn live(node: &Node) -> BTreeMap<DeviceId, &MeshConnection> {
    node.conns
        .iter()
        .filter(|c| !c.connection.sender().is_closed())
        .map(|c| (c.device.clone(), c))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn four_devices_form_a_full_mesh_with_authenticated_links() {
    let radio = SimRadio::new(SimConfig::default());
    let mut nodes = nodes(&radio, 4, None).await;
    // A full mesh of 4: 6 links, seen from both ends.
    collect(&mut nodes, 12).await;
    let peers: BTreeMap<DeviceId, PeerId> = nodes
        .iter()
        .map(|n| (n.device.id().clone(), n.peer))
        .collect();
    for node in &nodes {
        let live = live(node);
        assert_eq!(
            live.len(),
            3,
            "{} links of {}",
            live.len(),
            node.device.id()
        );
        for (device, c) in &live {
            // Each connection proved the identity of the node on that device.
            assert_eq!(c.connection.remote_peer(), peers[device]);
            // The lower device id dials.
            let expected = if node.device.id() < device {
                Role::Central
            } else {
                Role::Peripheral
            };
            assert_eq!(c.role, expected);
        }
        assert_eq!(radio.link_count(node.device.id()), 3);
        let stats = node.mesh.stats();
        assert_eq!(stats.links.len(), 3);
        assert!(stats.links.iter().all(|l| l.mtu == 517));
        assert_eq!(stats.max_links, 7);
    }
    // Messages flow over a mesh link, and the per-link counters see them.
    let (a, rest) = nodes.split_first_mut().expect("nodes");
    let to = a
        .conns
        .iter()
        .find(|c| c.role == Role::Central)
        .expect("a dialed");
    let target = to.device.clone();
    to.connection
        .send(Bytes::from_static(b"bet 5"))
        .await
        .expect("send");
    let b = rest
        .iter_mut()
        .find(|n| *n.device.id() == target)
        .expect("target");
    let from_a = b
        .conns
        .iter_mut()
        .find(|c| c.device == *a.device.id())
        .expect("b's link to a");
    let got = tokio::time::timeout(GUARD, from_a.connection.recv())
        .await
        .expect("guard");
    assert_eq!(got.expect("recv").as_deref(), Some(&b"bet 5"[..]));
    let link = b
        .mesh
        .stats()
        .links
        .into_iter()
        .find(|l| l.remote == *a.device.id())
        .expect("link stats");
    assert!(link.traffic.bytes_in > 5 && link.traffic.fragments_in > 0);
    assert!(link.rssi.is_none() || link.rssi.is_some_and(|r| r < 0));
}

#[tokio::test(start_paused = true)]
async fn links_stop_at_the_cap_and_the_mesh_is_maximal() {
    let radio = SimRadio::new(SimConfig::default());
    let mut nodes = nodes(&radio, 4, Some(2)).await;
    settle(&mut nodes, Duration::from_secs(30)).await;
    let linked: BTreeMap<DeviceId, BTreeSet<DeviceId>> = nodes
        .iter()
        .map(|n| (n.device.id().clone(), live(n).into_keys().collect()))
        .collect();
    let total: usize = linked.values().map(BTreeSet::len).sum();
    assert!(total >= 6, "at least 3 links: {linked:?}");
    for node in &nodes {
        let id = node.device.id();
        assert!(linked[id].len() <= 2, "{id} over the cap: {linked:?}");
        assert!(radio.link_count(id) <= 2);
        assert_eq!(node.mesh.stats().max_links, 2);
    }
    // Maximal: no two unlinked nodes both have room left.
    for (a, la) in &linked {
        for (b, lb) in &linked {
            if a < b && !la.contains(b) {
                assert!(
                    la.len() == 2 || lb.len() == 2,
                    "{a} and {b} could link: {linked:?}"
                );
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_link_is_re_established_after_backoff() {
    let radio = SimRadio::new(SimConfig::default());
    let mut nodes = nodes(&radio, 4, None).await;
    collect(&mut nodes, 12).await;
    let (d0, d1) = (nodes[0].device.id().clone(), nodes[1].device.id().clone());
    let dropped_at = Instant::now();
    assert_eq!(radio.drop_link(&d0, &d1), 1);
    // Both ends get a fresh, authenticated connection.
    collect(&mut nodes, 2).await;
    let elapsed = dropped_at.elapsed();
    assert!(
        elapsed >= backoff().initial / 2,
        "reconnected after {elapsed:?}, before the backoff"
    );
    let fresh = nodes[0].conns.last().expect("new connection");
    assert_eq!(fresh.device, d1);
    assert_eq!(fresh.connection.remote_peer(), nodes[1].peer);
    assert_eq!(nodes[1].conns.last().expect("new").device, d0);
    let stats = nodes[0].mesh.stats();
    assert_eq!(stats.links_lost, 1);
    assert_eq!(stats.reconnects, 1);
    assert_eq!(stats.links.len(), 3);
    for n in &nodes {
        assert_eq!(live(n).len(), 3);
    }
}

#[tokio::test(start_paused = true)]
async fn a_partition_splits_the_mesh_and_healing_rejoins_it() {
    let radio = SimRadio::new(SimConfig::default());
    let mut nodes = nodes(&radio, 4, None).await;
    collect(&mut nodes, 12).await;
    let ids: Vec<DeviceId> = nodes.iter().map(|n| n.device.id().clone()).collect();
    // {0, 1} | {2, 3}: moving 2 drops its three links, moving 3 its two to 0 and 1.
    let dropped = radio.set_partition(&ids[2], 1) + radio.set_partition(&ids[3], 1);
    assert_eq!(dropped, 5);
    // 2 and 3 are in range of each other again: their link comes back.
    collect(&mut nodes, 2).await;
    // The partition lasts 10 s: several backoff rounds of retries across it, all unreachable.
    tokio::time::sleep(Duration::from_secs(10)).await;
    for n in &nodes {
        assert_eq!(live(n).len(), 1, "{} during the partition", n.device.id());
    }
    let failed: u64 = nodes.iter().map(|n| n.mesh.stats().connects_failed).sum();
    assert!(failed >= 4, "retries during the partition: {failed}");
    // Heal, one device at a time: moving 2 back drops 2-3 for a moment, then all five links
    // come back, seen from both ends.
    assert_eq!(radio.set_partition(&ids[2], 0), 1);
    assert_eq!(radio.set_partition(&ids[3], 0), 0);
    collect(&mut nodes, 10).await;
    for n in &nodes {
        let live = live(n);
        assert_eq!(
            live.len(),
            3,
            "{} after healing: {:?}",
            n.device.id(),
            live.keys()
        );
    }
}

/// An adapter seen by itself under another id than the one others discover (as on hardware
/// with private addresses): here every node believes it sorts first, so every pair dials both
/// ways, and each node's central also reaches its own peripheral.
struct Alias {
    inner: Arc<dyn bitcraps_transport_ble::link::BleAdapter>,
    id: DeviceId,
}

#[async_trait::async_trait]
impl bitcraps_transport_ble::link::BleAdapter for Alias {
    fn local_id(&self) -> DeviceId {
        self.id.clone()
    }
    fn max_links(&self) -> usize {
        self.inner.max_links()
    }
    async fn start_advertising(
        &self,
        config: bitcraps_transport_ble::AdvertisingConfig,
    ) -> Result<(), bitcraps_transport_ble::LinkError> {
        self.inner.start_advertising(config).await
    }
    async fn stop_advertising(&self) -> Result<(), bitcraps_transport_ble::LinkError> {
        self.inner.stop_advertising().await
    }
    async fn scan(
        &self,
        service: uuid::Uuid,
    ) -> Result<bitcraps_transport_ble::link::Scan, bitcraps_transport_ble::LinkError> {
        self.inner.scan(service).await
    }
    async fn connect(
        &self,
        device: &DeviceId,
        timeout: Duration,
    ) -> Result<bitcraps_transport_ble::BleLink, bitcraps_transport_ble::LinkError> {
        self.inner.connect(device, timeout).await
    }
    async fn listen(
        &self,
    ) -> Result<bitcraps_transport_ble::link::IncomingLinks, bitcraps_transport_ble::LinkError>
    {
        self.inner.listen().await
    }
}

/// Hardware-shaped nodes: a central device plus a peripheral device each (btleplug and bluer
/// on one radio), with asymmetric ids. Duplicate links to a peer are resolved the same way at
/// both ends (one connection per peer survives), and a node reaching itself lets go.
#[tokio::test(start_paused = true)]
async fn dual_role_nodes_keep_one_connection_per_peer() {
    use bitcraps_transport_ble::link::{BleAdapter, DualAdapter};
    let radio = SimRadio::new(SimConfig::default());
    let mut meshes = Vec::new();
    let mut peers = Vec::new();
    let mut devices = Vec::new();
    for i in 0..3u64 {
        let central = Arc::new(radio.add_device(SimDeviceConfig::default()));
        let peripheral = Arc::new(radio.add_device(SimDeviceConfig::default()));
        let dual: Arc<dyn BleAdapter> =
            Arc::new(DualAdapter::new(central.clone(), peripheral.clone()));
        let adapter: Arc<dyn BleAdapter> = Arc::new(Alias {
            inner: dual,
            id: DeviceId::new(format!("a-node-{i}")),
        });
        let identity = LocalIdentity::new(Keypair::generate());
        peers.push(identity.peer_id());
        let mut config = MeshConfig::new(format!("dual{i}"));
        config.backoff = backoff();
        config.seed = i;
        let mesh = MeshNode::start(
            adapter,
            identity,
            ChannelConfig::default(),
            SharedLimiter::unlimited(),
            config,
        )
        .await
        .expect("start");
        meshes.push(mesh);
        devices.push((central, peripheral));
    }
    // Let the mesh settle: no new connection for 60 s of virtual time (several backoff maxima).
    let mut delivered: Vec<Vec<MeshConnection>> = meshes.iter().map(|_| Vec::new()).collect();
    loop {
        let next = futures::future::select_all(
            meshes
                .iter_mut()
                .enumerate()
                .map(|(i, m)| Box::pin(async move { (i, m.next_connection().await) })),
        );
        let next = tokio::time::timeout(Duration::from_secs(60), next)
            .await
            .map(|((i, c), _, _)| (i, c));
        match next {
            Ok((i, c)) => delivered[i].push(c.expect("running")),
            Err(_) => break,
        }
    }
    for (i, conns) in delivered.iter().enumerate() {
        let live: Vec<PeerId> = conns
            .iter()
            .filter(|c| !c.connection.sender().is_closed())
            .map(|c| c.connection.remote_peer())
            .collect();
        let unique: BTreeSet<PeerId> = live.iter().copied().collect();
        assert_eq!(
            live.len(),
            unique.len(),
            "node {i}: two live connections to one peer"
        );
        let others: BTreeSet<PeerId> = peers.iter().copied().filter(|p| *p != peers[i]).collect();
        assert_eq!(unique, others, "node {i} reaches every other node once");
        // Only the surviving links hold radio slots: one per peer, on this node's central or
        // peripheral device (duplicates and the link to itself were let go).
        let (c, p) = &devices[i];
        assert_eq!(radio.link_count(c.id()) + radio.link_count(p.id()), 2);
    }
    let dropped: u64 = meshes.iter().map(|m| m.stats().duplicates_dropped).sum();
    assert!(
        dropped > 0,
        "every pair dialed both ways, so duplicates were resolved"
    );
}
