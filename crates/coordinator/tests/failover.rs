//! Failover between routes, and recovery back to the preferred route with hysteresis.

mod common;

use std::time::Duration;

use bitcraps_coordinator::{CoordinatorEvent, Priority};
use bitcraps_transport_core::{Keypair, TransportAddress};
use bitcraps_transport_mem::MemoryNetwork;
use common::*;
use tokio::time::Instant;

/// A peer reachable over memory (preferred) and TCP. The sender streams 1,000 messages; the
/// memory listener and its connections are killed mid-stream; traffic moves to TCP and the
/// application receives every message exactly once, in order. Real time (TCP involved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_mid_stream_delivers_everything_once_in_order() {
    let net = MemoryNetwork::new();
    let kr = Keypair::generate();
    // A small event queue and window: most of the stream is still to come when route A dies.
    let mut rc = config();
    rc.event_queue = 32;
    let (r, mut er) = node(vec![mem(&net, &kr), tcp(&kr)], rc);
    let route_a = r.listen(&TransportAddress::Memory(0)).await.unwrap();
    let route_b = r
        .listen(&"tcp://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ks = Keypair::generate();
    let mut sc = config();
    sc.max_unacked = 32;
    let (s, mut es) = node(vec![mem(&net, &ks), tcp(&ks)], sc);
    let (ps, pr) = (s.local_peer_id(), r.local_peer_id());
    s.connect_to_peer(pr, vec![route_a.clone(), route_b.clone()])
        .await
        .unwrap();
    assert_eq!(
        s.connection_stats().peers[0].active.as_ref(),
        Some(&route_a)
    );

    const N: u32 = 1_000;
    let sender = s.clone();
    let stream = tokio::spawn(async move {
        for i in 0..N {
            sender
                .send_to_peer(pr, msg(i), Priority::Bulk)
                .await
                .unwrap();
        }
    });
    let mut killed_at = None;
    let mut switched_at = None;
    let mut first_after_switch = None;
    let mut i = 0;
    while i < N {
        let event = wait_for(&mut er, |e| Some(e.clone())).await;
        match event {
            CoordinatorEvent::DataReceived { peer, data } if peer == ps => {
                assert_eq!(num(&data), i, "message {i} out of order or duplicated");
                if switched_at.is_some() && first_after_switch.is_none() {
                    first_after_switch = Some(std::time::Instant::now());
                }
                if i == 300 {
                    killed_at = Some(std::time::Instant::now());
                    r.close_listener(&route_a).await.unwrap();
                }
                i += 1;
            }
            CoordinatorEvent::RouteChanged { to, .. } => {
                assert!(matches!(to, TransportAddress::Tcp(_)));
                switched_at = Some(std::time::Instant::now());
            }
            _ => {}
        }
    }
    let killed_at = killed_at.unwrap();
    let failover_time = (
        switched_at.unwrap() - killed_at,
        first_after_switch.unwrap() - killed_at,
    );
    stream.await.unwrap();
    let (from, to) = wait_for(&mut es, |e| match e {
        CoordinatorEvent::RouteChanged { from, to, .. } => Some((from.clone(), to.clone())),
        _ => None,
    })
    .await;
    assert_eq!(from, Some(route_a));
    assert_eq!(to, route_b.clone());
    // Nothing more arrives: exactly once. (The receiver's counters are read before the
    // sender's goodbye ends the session there.)
    let stats = r.stats();
    let report = s.shutdown(Duration::from_secs(5)).await;
    assert!(report.flushed);
    let peer = stats.per_peer.iter().find(|p| p.peer == ps).unwrap();
    assert_eq!(peer.delivered, u64::from(N));
    println!(
        "failover (memory -> tcp): kill -> tcp connection attached at the receiver {:?}, -> next message delivered {:?}; duplicates dropped by the receiver: {}",
        failover_time.0, failover_time.1, peer.duplicates
    );
}

/// After a failover to route B, the preferred route A comes back: traffic returns to it only
/// after it answered `switch_back_after` health checks (hysteresis), and no message is lost
/// or duplicated across both moves. Memory only, paused time.
#[tokio::test(start_paused = true)]
async fn traffic_returns_to_the_preferred_route_with_hysteresis() {
    let net = MemoryNetwork::new();
    let kr = Keypair::generate();
    let (r, mut er) = node(vec![mem(&net, &kr)], config());
    let route_a = r.listen(&TransportAddress::Memory(0)).await.unwrap();
    let route_b = r.listen(&TransportAddress::Memory(0)).await.unwrap();
    let (s, mut es, _, ks) = mem_node(&net, config()).await;
    let (ps, pr) = (ks.peer_id(), r.local_peer_id());
    let interval = s.config().health_interval;
    let hysteresis = s.config().switch_back_after;
    s.connect_to_peer(pr, vec![route_a.clone(), route_b.clone()])
        .await
        .unwrap();
    let mut next = 0;
    for _ in 0..50 {
        s.send_to_peer(pr, msg(next), Priority::Bulk).await.unwrap();
        next += 1;
    }
    r.close_listener(&route_a).await.unwrap();
    for _ in 0..50 {
        s.send_to_peer(pr, msg(next), Priority::Bulk).await.unwrap();
        next += 1;
    }
    let to = wait_for(&mut es, |e| match e {
        CoordinatorEvent::RouteChanged { to, .. } => Some(to.clone()),
        _ => None,
    })
    .await;
    assert_eq!(to, route_b);

    // The preferred route comes back. S redials it at once, but moves its traffic there only
    // after `switch_back_after` health checks in a row, one health interval apart.
    assert_eq!(r.listen(&route_a).await.unwrap(), route_a);
    let back = Instant::now();
    let to = wait_for(&mut es, |e| match e {
        CoordinatorEvent::RouteChanged { to, .. } => Some(to.clone()),
        _ => None,
    })
    .await;
    assert_eq!(to, route_a);
    assert!(back.elapsed() >= interval * (hysteresis - 1));
    for _ in 0..50 {
        s.send_to_peer(pr, msg(next), Priority::Bulk).await.unwrap();
        next += 1;
    }
    for i in 0..next {
        assert_eq!(num(&next_data(&mut er, ps).await), i);
    }
    let cs = s.connection_stats();
    assert_eq!(cs.peers[0].active.as_ref(), Some(&route_a));
    // The failover and the switch-back, in the peer's counters and the totals.
    let stats = s.stats();
    assert_eq!(stats.per_peer[0].route_changes, 2);
    assert_eq!(stats.totals.route_changes, 2);
    assert!(s.shutdown(Duration::from_secs(5)).await.flushed);
    assert!(er
        .try_recv()
        .is_none_or(|e| !matches!(e, CoordinatorEvent::DataReceived { .. })));
}
