//! Coordinator-level connection limits, applied to outbound AND inbound connections across
//! transports.

mod common;

use bitcraps_coordinator::{CoordinatorError, CoordinatorEvent};
use bitcraps_transport_core::{ConnectionLimits, LimitKind};
use bitcraps_transport_mem::MemoryNetwork;
use common::*;

fn limited(total: usize) -> bitcraps_coordinator::CoordinatorConfig {
    let mut c = config();
    c.limits = ConnectionLimits {
        max_total_connections: total,
        ..ConnectionLimits::default()
    };
    c
}

#[tokio::test(start_paused = true)]
async fn outbound_connections_over_the_total_are_refused() {
    let net = MemoryNetwork::new();
    let (s, _es, _, _) = mem_node(&net, limited(1)).await;
    let (r1, _e1, a1, _) = mem_node(&net, config()).await;
    let (r2, _e2, a2, _) = mem_node(&net, config()).await;
    s.connect_to_peer(r1.local_peer_id(), vec![a1])
        .await
        .unwrap();
    let err = s
        .connect_to_peer(r2.local_peer_id(), vec![a2])
        .await
        .unwrap_err();
    match err {
        CoordinatorError::AllRoutesFailed { failures, .. } => {
            let limit = failures.iter().any(|f| {
                matches!(&f.error, bitcraps_coordinator::RouteError::Dial(e)
                    if e.limit_rejection().is_some_and(|r| r.limit == LimitKind::TotalConnections))
            });
            assert!(limit, "{failures:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.connection_stats().total_connections, 1);
    assert_eq!(s.connection_stats().connection_limit, 1);
}

#[tokio::test(start_paused = true)]
async fn inbound_connections_over_the_total_are_refused() {
    let net = MemoryNetwork::new();
    let (r, mut er, r_addr, _) = mem_node(&net, limited(2)).await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (c, e, _, _) = mem_node(&net, config()).await;
        c.connect_to_peer(r.local_peer_id(), vec![r_addr.clone()])
            .await
            .unwrap();
        clients.push((c, e));
    }
    let (third, _e3, _, _) = mem_node(&net, config()).await;
    // The dial itself completes (the limit is checked once the identity is proven), then R
    // refuses the connection and closes it.
    let _ = third
        .connect_to_peer(r.local_peer_id(), vec![r_addr.clone()])
        .await;
    wait_for(&mut er, |e| match e {
        CoordinatorEvent::InboundRefused { error, .. } => {
            assert_eq!(error.kind(), "Limit", "{error}");
            assert!(error.to_string().contains("total connections"), "{error}");
            Some(())
        }
        _ => None,
    })
    .await;
    assert_eq!(r.connection_stats().total_connections, 2);
    assert!(!r.peers().contains(&third.local_peer_id()));
}
