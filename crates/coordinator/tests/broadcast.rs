//! Broadcast to 100 in-memory peers, one of them dead: the other 99 receive, exactly one
//! error is reported.

mod common;

use std::time::Duration;

use bitcraps_coordinator::{CoordinatorEvent, Priority};
use bitcraps_transport_core::{Bytes, Keypair, Transport, TransportAddress};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use common::*;

#[tokio::test(start_paused = true)]
async fn broadcast_reaches_the_live_peers_and_reports_the_dead_one() {
    let net = MemoryNetwork::new();
    let mut cfg = config();
    cfg.max_unacked = 8;
    cfg.send_timeout = Duration::from_secs(3600);
    let (hub, _hub_events, _, _) = mem_node(&net, cfg).await;
    let mut live = Vec::new();
    for _ in 0..99 {
        let (c, e, addr, _) = mem_node(&net, config()).await;
        hub.connect_to_peer(c.local_peer_id(), vec![addr])
            .await
            .unwrap();
        live.push((c, e));
    }
    // The dead peer: completes the handshake, then never reads or answers anything.
    let dead = MemoryTransport::new(&net, Keypair::generate());
    let mut dead_listener = dead.listen(&TransportAddress::Memory(0)).await.unwrap();
    let dead_addr = dead_listener.local_addr().clone();
    hub.connect_to_peer(dead.local_peer_id(), vec![dead_addr])
        .await
        .unwrap();
    let _held = dead_listener.accept_connection().await.unwrap();
    // Its window fills with messages it will never acknowledge.
    for i in 0..8 {
        hub.send_to_peer(dead.local_peer_id(), msg(i), Priority::Bulk)
            .await
            .unwrap();
    }
    assert_eq!(hub.peers().len(), 100);

    let results = hub.broadcast(Bytes::from_static(b"dice: 4 + 3")).await;
    assert_eq!(results.len(), 100);
    let errors: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, dead.local_peer_id());
    println!("the dead peer's error: {:?}", errors[0].1);
    for (c, e) in &mut live {
        let _ = c;
        let data = next_data(e, hub.local_peer_id()).await;
        assert_eq!(&data[..], b"dice: 4 + 3");
    }
}

#[tokio::test(start_paused = true)]
async fn broadcast_with_no_peer_is_empty() {
    let net = MemoryNetwork::new();
    let (hub, _e, _, _) = mem_node(&net, config()).await;
    assert!(hub.broadcast(Bytes::from_static(b"x")).await.is_empty());
    let _ = CoordinatorEvent::Lagged { missed: 0 };
}
