//! Health checks: a peer that stops answering PINGs is disconnected with the reason.

mod common;

use bitcraps_coordinator::{CoordinatorEvent, DisconnectReason, LinkFailure, RouteError};
use bitcraps_transport_core::{Keypair, Transport};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use common::*;

/// A raw core connection (not a coordinator) dials the coordinator and never answers: after
/// `max_missed_pings` unanswered PINGs the coordinator closes it, and once the reconnect grace
/// ends the peer is reported disconnected with the health-check reason.
#[tokio::test(start_paused = true)]
async fn silent_peer_is_disconnected_with_the_reason() {
    let net = MemoryNetwork::new();
    let (c, mut events, addr, _) = mem_node(&net, config()).await;
    let silent = MemoryTransport::new(&net, Keypair::generate());
    let raw = silent.dial(&addr, Some(c.local_peer_id())).await.unwrap();
    let start = tokio::time::Instant::now();
    wait_for(&mut events, |e| match e {
        CoordinatorEvent::Connected { peer, .. } if *peer == silent.local_peer_id() => Some(()),
        _ => None,
    })
    .await;
    let reason = wait_for(&mut events, |e| match e {
        CoordinatorEvent::Disconnected { peer, reason } if *peer == silent.local_peer_id() => {
            Some(reason.clone())
        }
        _ => None,
    })
    .await;
    match reason {
        DisconnectReason::ConnectionLost(LinkFailure::Unresponsive { missed, .. }) => {
            assert_eq!(missed, c.config().max_missed_pings)
        }
        other => panic!("unexpected reason {other:?}"),
    }
    // Not before one interval plus two timeouts (1 s, then 2 s after backoff).
    assert!(start.elapsed() >= c.config().health_interval);
    assert!(c.peers().is_empty());
    drop(raw);
}

/// A peer that answers keeps its connection through many health intervals.
#[tokio::test(start_paused = true)]
async fn answering_peer_stays_connected() {
    let net = MemoryNetwork::new();
    let (a, mut ea, _, _) = mem_node(&net, config()).await;
    let (b, _eb, b_addr, _) = mem_node(&net, config()).await;
    a.connect_to_peer(b.local_peer_id(), vec![b_addr])
        .await
        .unwrap();
    let interval = a.config().health_interval;
    tokio::time::sleep(interval * 20).await; // virtual time: 20 rounds of PING/PONG
    assert_eq!(a.peers(), vec![b.local_peer_id()]);
    while let Some(e) = ea.try_recv() {
        assert!(!matches!(e, CoordinatorEvent::Disconnected { .. }), "{e:?}");
    }
}

/// A silent peer we dialed: each health-check failure triggers a redial (which succeeds: its
/// listener still completes handshakes), until the route's breaker opens; then the peer is
/// disconnected, and the reason names the open breaker.
#[tokio::test(start_paused = true)]
async fn silent_routed_peer_opens_the_breaker_then_is_disconnected() {
    use bitcraps_coordinator::BreakerState;
    use bitcraps_transport_core::TransportAddress;
    let net = MemoryNetwork::new();
    let (c, mut events, _, _) = mem_node(&net, config()).await;
    let silent = MemoryTransport::new(&net, Keypair::generate());
    let listener = silent.listen(&TransportAddress::Memory(0)).await.unwrap();
    let route = listener.local_addr().clone();
    let ps = silent.local_peer_id();
    c.connect_to_peer(ps, vec![route.clone()]).await.unwrap();
    let mut opened = false;
    let reason = wait_for(&mut events, |e| match e {
        CoordinatorEvent::Breaker {
            route: r,
            state: BreakerState::Open { .. },
            ..
        } if *r == route => {
            opened = true;
            None
        }
        CoordinatorEvent::Disconnected { peer, reason } if *peer == ps => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(opened, "the breaker never opened");
    match reason {
        DisconnectReason::AllRoutesFailed { failures } => {
            let open = failures
                .iter()
                .any(|f| matches!(f.error, RouteError::BreakerOpen { .. }));
            assert!(open, "{failures:?}");
        }
        other => panic!("unexpected reason {other:?}"),
    }
    drop(listener);
}
