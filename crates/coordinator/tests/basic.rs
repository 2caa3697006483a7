//! End to end over the memory backend: connect, send both ways in order, batch, stats,
//! disconnect, graceful shutdown.

mod common;

use bitcraps_coordinator::{CoordinatorEvent, DisconnectReason, Priority};
use bitcraps_transport_mem::MemoryNetwork;
use common::*;

#[tokio::test(start_paused = true)]
async fn messages_flow_both_ways_in_order() {
    let net = MemoryNetwork::new();
    let (a, mut ea, _, _) = mem_node(&net, config()).await;
    let (b, mut eb, b_addr, _) = mem_node(&net, config()).await;
    let (pa, pb) = (a.local_peer_id(), b.local_peer_id());
    a.connect_to_peer(pb, vec![b_addr.clone()]).await.unwrap();
    let connected = wait_for(&mut ea, |e| match e {
        CoordinatorEvent::Connected { peer, address } => Some((*peer, address.clone())),
        _ => None,
    })
    .await;
    assert_eq!(connected, (pb, b_addr));
    for i in 0..500 {
        a.send_to_peer(pb, msg(i), Priority::Bulk).await.unwrap();
    }
    for i in 0..500 {
        assert_eq!(num(&next_data(&mut eb, pa).await), i);
    }
    // B answers over the connection A dialed.
    b.send_to_peer(pa, msg(7), Priority::Interactive)
        .await
        .unwrap();
    assert_eq!(num(&next_data(&mut ea, pb).await), 7);

    let results = a.send_batch(vec![(pb, msg(1)), (pb, msg(2))]).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(num(&next_data(&mut eb, pa).await), 1);
    assert_eq!(num(&next_data(&mut eb, pa).await), 2);

    let stats = a.stats();
    let peer = stats.per_peer.iter().find(|p| p.peer == pb).unwrap();
    // Envelopes are coalesced: fewer transport messages than messages, every byte counted.
    assert!(peer.traffic.packets_sent >= 1);
    assert!(peer.traffic.bytes_sent >= 502 * (14 + 4));
    assert_eq!(peer.traffic.connection_count, 1);
    let cs = a.connection_stats();
    assert_eq!(cs.total_connections, 1);
    assert_eq!(cs.peers[0].active, Some(cs.peers[0].routes[0].clone()));

    a.disconnect(pb).await.unwrap();
    let reason = wait_for(&mut ea, |e| match e {
        CoordinatorEvent::Disconnected { peer, reason } if *peer == pb => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(reason, DisconnectReason::Local(_)));
    assert!(a.send_to_peer(pb, msg(0), Priority::Bulk).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_queued_messages() {
    let net = MemoryNetwork::new();
    let (a, _ea, _, _) = mem_node(&net, config()).await;
    let (_b, mut eb, b_addr, kb) = mem_node(&net, config()).await;
    let pb = kb.peer_id();
    a.connect_to_peer(pb, vec![b_addr]).await.unwrap();
    for i in 0..200 {
        a.send_to_peer(pb, msg(i), Priority::Bulk).await.unwrap();
    }
    let report = a.shutdown(std::time::Duration::from_secs(5)).await;
    assert!(report.flushed);
    for i in 0..200 {
        assert_eq!(num(&next_data(&mut eb, a.local_peer_id()).await), i);
    }
    assert!(a.listen(&"memory://0".parse().unwrap()).await.is_err());
}

/// `shutdown` right after the last `send_to_peer` returns must still deliver it: the flush
/// counts messages the peer's actor has not taken off its input queue yet. (The actor once
/// answered a flush before taking a queued message, and the close dropped it; `bitcraps-node`
/// over UDP lost 1 or 2 of 10. This in-process race rarely loses the interleaving, so this test
/// guards the behaviour rather than reproducing that schedule.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_right_after_the_last_send_still_delivers_it() {
    for round in 0..50 {
        let net = MemoryNetwork::new();
        let (a, _ea, _, _) = mem_node(&net, config()).await;
        let (_b, mut eb, b_addr, kb) = mem_node(&net, config()).await;
        let pb = kb.peer_id();
        a.connect_to_peer(pb, vec![b_addr]).await.unwrap();
        a.send_to_peer(pb, msg(round), Priority::Interactive)
            .await
            .unwrap();
        let report = a.shutdown(std::time::Duration::from_secs(5)).await;
        assert!(report.flushed, "round {round}");
        assert_eq!(num(&next_data(&mut eb, a.local_peer_id()).await), round);
    }
}
