//! Tests of the transport shell: virtual connections over two hops, the listener, the cap of
//! virtual connections, a dial replacing an older connection, direct links going down.

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{
    Bytes, Connection, Error, Keypair, LimitKind, PeerId, Transport, TransportAddress,
};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};

use super::{MeshTransport, MeshTransportConfig, MeshTransportError, MAX_VIRTUAL_MESSAGE};

fn node(net: &MemoryNetwork, config: MeshTransportConfig) -> (MeshTransport, PeerId) {
    let k = Keypair::generate();
    let mem: Arc<dyn Transport> = Arc::new(MemoryTransport::new(net, k.clone()));
    let peer = k.peer_id();
    (MeshTransport::new(k, config, vec![mem]).unwrap(), peer)
}

/// Links `a` to `b` directly (b listens, a dials).
async fn link(a: &MeshTransport, b: &MeshTransport, b_id: PeerId) {
    let bound = b.listen_direct(&TransportAddress::Memory(0)).await.unwrap();
    assert_eq!(a.dial_direct(&bound, Some(b_id)).await.unwrap(), b_id);
}

/// Waits (in paused time, a bounded number of turns) until `cond` holds on `mesh`'s stats.
async fn until(mesh: &MeshTransport, cond: impl Fn(&super::MeshTransportStats) -> bool) {
    for _ in 0..1_000 {
        if cond(&mesh.stats().await.unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition not reached: {:?}", mesh.stats().await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_virtual_connection_crosses_a_relay_both_ways() {
    let net = MemoryNetwork::new();
    let (a, pa) = node(&net, MeshTransportConfig::default());
    let (b, pb) = node(&net, MeshTransportConfig::default());
    let (c, pc) = node(&net, MeshTransportConfig::default());
    link(&a, &b, pb).await;
    link(&b, &c, pc).await;
    let mut listener = c.listen(&TransportAddress::Mesh(pc)).await.unwrap();
    assert_eq!(listener.local_addr(), &TransportAddress::Mesh(pc));

    let mut to_c = a.dial(&TransportAddress::Mesh(pc), Some(pc)).await.unwrap();
    assert_eq!(to_c.remote_peer(), pc);
    assert!(!a.capabilities().reliable && !a.capabilities().ordered);
    assert_eq!(to_c.sender().max_message_size(), MAX_VIRTUAL_MESSAGE);
    to_c.send(Bytes::from_static(b"come out")).await.unwrap();

    let mut from_a = listener.accept_connection().await.unwrap();
    // The identity is the mesh packet's signer: A, though the bytes came through B.
    assert_eq!(from_a.remote_peer(), pa);
    assert_eq!(from_a.remote_addr(), &TransportAddress::Mesh(pa));
    assert_eq!(from_a.recv().await.unwrap().unwrap(), "come out");
    from_a.send(Bytes::from_static(b"seven")).await.unwrap();
    assert_eq!(to_c.recv().await.unwrap().unwrap(), "seven");
    assert_eq!(listener.stats().accepted, 1);
    let relayed = b.stats().await.unwrap();
    assert_eq!(relayed.virtual_connections, 0, "the relay reads nothing");
    assert!(relayed.engine.transmissions >= 2);
}

#[tokio::test(start_paused = true)]
async fn the_cap_of_virtual_connections_is_a_typed_limit() {
    let net = MemoryNetwork::new();
    let config = MeshTransportConfig {
        max_virtual_connections: 2,
        ..MeshTransportConfig::default()
    };
    let (a, _) = node(&net, config);
    let dial = |p: PeerId| {
        let a = a.clone();
        async move { a.dial(&TransportAddress::Mesh(p), None).await }
    };
    let first = dial(Keypair::generate().peer_id()).await.unwrap();
    let _second = dial(Keypair::generate().peer_id()).await.unwrap();
    match dial(Keypair::generate().peer_id()).await {
        Err(Error::Limit(r)) => assert_eq!(r.limit, LimitKind::TotalConnections),
        other => panic!("expected the cap, got {other:?}"),
    }
    first.close("done").await.unwrap();
    dial(Keypair::generate().peer_id()).await.unwrap();
    // Dialing ourselves or a non-mesh address is refused.
    let me = a.local_peer_id();
    assert!(matches!(
        dial(me).await,
        Err(Error::Unsupported(TransportAddress::Mesh(p))) if p == me
    ));
    let other = Keypair::generate().peer_id();
    assert!(matches!(
        a.dial(&TransportAddress::Mesh(other), Some(me)).await,
        Err(Error::PeerMismatch { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_dial_replaces_the_older_connection_and_idle_ones_end() {
    let net = MemoryNetwork::new();
    let config = MeshTransportConfig {
        virtual_idle_timeout: Duration::from_secs(30),
        ..MeshTransportConfig::default()
    };
    let (a, _) = node(&net, config);
    let peer = TransportAddress::Mesh(Keypair::generate().peer_id());
    let mut old = a.dial(&peer, None).await.unwrap();
    let mut new = a.dial(&peer, None).await.unwrap();
    assert!(matches!(old.recv().await, Err(Error::LinkLost(_))));
    assert_eq!(a.stats().await.unwrap().virtual_connections, 1);
    // Nothing ever comes from the (absent) peer: the connection ends after the idle timeout.
    let started = tokio::time::Instant::now();
    assert!(matches!(new.recv().await, Err(Error::LinkLost(_))));
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert_eq!(a.stats().await.unwrap().virtual_connections, 0);
}

#[tokio::test(start_paused = true)]
async fn a_direct_link_that_ends_is_down_and_frees_its_slot() {
    let net = MemoryNetwork::new();
    let config = MeshTransportConfig {
        max_direct_links: 1,
        ..MeshTransportConfig::default()
    };
    let (a, _) = node(&net, config);
    let (b, pb) = node(&net, MeshTransportConfig::default());
    let (c, pc) = node(&net, MeshTransportConfig::default());
    link(&a, &b, pb).await;
    let c_addr = c.listen_direct(&TransportAddress::Memory(0)).await.unwrap();
    assert!(matches!(
        a.dial_direct(&c_addr, Some(pc)).await,
        Err(MeshTransportError::TooManyLinks(1))
    ));
    until(&b, |s| s.direct_links == 1 && s.memory.links == 1).await;
    drop(b); // B's mesh task ends and its links close.
    until(&a, |s| s.direct_links == 0 && s.memory.links == 0).await;
    a.dial_direct(&c_addr, Some(pc)).await.unwrap();
    assert_eq!(a.stats().await.unwrap().direct_links, 1);
}

/// Two connected connections between `a` and `b`, as a backend would make them.
fn raw_pair(a: &Keypair, b: &Keypair) -> (Connection, Connection) {
    use bitcraps_transport_core::backend::new_connection;
    use bitcraps_transport_core::{ChannelConfig, ConnectionInfo, TransportKind};
    let info = |l: PeerId, r: PeerId| ConnectionInfo {
        local_peer: l,
        remote_peer: r,
        local_addr: TransportAddress::Memory(1),
        remote_addr: TransportAddress::Memory(2),
        kind: TransportKind::Memory,
        outbound: true,
    };
    let (ca, mut ia) = new_connection(info(a.peer_id(), b.peer_id()), &ChannelConfig::default());
    let (cb, mut ib) = new_connection(info(b.peer_id(), a.peer_id()), &ChannelConfig::default());
    tokio::spawn(async move {
        while let Some(bitcraps_transport_core::backend::SendItem::Message(m)) =
            ia.send_queue.recv().await
        {
            ib.incoming.deliver(m).await;
        }
    });
    tokio::spawn(async move {
        while let Some(bitcraps_transport_core::backend::SendItem::Message(m)) =
            ib.send_queue.recv().await
        {
            ia.incoming.deliver(m).await;
        }
    });
    (ca, cb)
}

/// A packet signed by its origin but framed outside the freshness window (a replay after the
/// duplicate cache forgot it) is refused; the same packet framed now is delivered.
#[tokio::test(start_paused = true)]
async fn a_stale_frame_is_refused_even_when_the_packet_is_new() {
    use crate::crypto::seal_directed;
    use crate::frame::{encode, now_ms};
    use crate::wire::MessageId;
    let net = MemoryNetwork::new();
    let (c, pc) = node(&net, MeshTransportConfig::default());
    let mut listener = c.listen(&TransportAddress::Mesh(pc)).await.unwrap();
    let origin = Keypair::generate();
    // A direct link from `origin` to C (only the remote's identity matters to C's mesh).
    let (at_origin, at_c) = raw_pair(&origin, &Keypair::generate());
    c.add_link(at_c).await.unwrap();
    let packet = |id: u8, sent_at: u64| {
        let frame = encode(sent_at, b"replayed bet");
        let p = seal_directed(&origin, MessageId([id; 16]), 7, pc, [id; 32], &frame).unwrap();
        p.encode()
    };
    let old = now_ms() - 200_000;
    at_origin.send(packet(1, old)).await.unwrap();
    until(&c, |s| s.refused_frames == 1).await;
    assert_eq!(c.stats().await.unwrap().virtual_connections, 0);
    at_origin.send(packet(2, now_ms())).await.unwrap();
    let mut conn = listener.accept_connection().await.unwrap();
    assert_eq!(conn.remote_peer(), origin.peer_id());
    assert_eq!(conn.recv().await.unwrap().unwrap(), "replayed bet");
}

/// A direct link over its packet rate has the excess dropped before any other work.
#[tokio::test(start_paused = true)]
async fn a_direct_link_over_its_rate_is_cut_off() {
    let net = MemoryNetwork::new();
    let config = MeshTransportConfig {
        link_packets_per_second: 0,
        link_packet_burst: 2,
        ..MeshTransportConfig::default()
    };
    let (c, _) = node(&net, config);
    let neighbour = Keypair::generate();
    let (at_neighbour, at_c) = raw_pair(&neighbour, &Keypair::generate());
    c.add_link(at_c).await.unwrap();
    for _ in 0..5 {
        at_neighbour
            .send(Bytes::from_static(b"junk"))
            .await
            .unwrap();
    }
    until(&c, |s| s.rate_limited == 3).await;
    let s = c.stats().await.unwrap();
    assert_eq!(s.engine.rejected, 2, "only the burst reached the decoder");
}

#[tokio::test(start_paused = true)]
async fn broadcasts_reach_every_node_once() {
    let net = MemoryNetwork::new();
    let (a, pa) = node(&net, MeshTransportConfig::default());
    let (b, pb) = node(&net, MeshTransportConfig::default());
    let (c, pc) = node(&net, MeshTransportConfig::default());
    link(&a, &b, pb).await;
    link(&b, &c, pc).await;
    let mut at_c = c.broadcasts().unwrap();
    assert!(c.broadcasts().is_none(), "one stream");
    let mut at_b = b.broadcasts().unwrap();
    until(&b, |s| s.direct_links == 2).await;
    until(&c, |s| s.direct_links == 1).await;
    a.broadcast(Bytes::from_static(b"round 3")).await.unwrap();
    let got = at_c.recv().await.unwrap();
    assert_eq!(
        (got.origin, got.hops, &got.payload[..]),
        (pa, 1, &b"round 3"[..])
    );
    assert_eq!(at_b.recv().await.unwrap().hops, 0);
    // Nothing else arrives: each node delivers the broadcast once.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(at_c.rx.try_recv().is_err());
    assert!(at_b.rx.try_recv().is_err());
}
