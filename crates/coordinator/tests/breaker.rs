//! A route's circuit breaker through the coordinator: open after N dial failures, a probe
//! after the cooldown, closed again when the probe succeeds.

mod common;

use std::time::Duration;

use bitcraps_coordinator::{BreakerConfig, BreakerState, CoordinatorError, CoordinatorEvent};
use bitcraps_transport_core::{Keypair, TransportAddress};
use bitcraps_transport_mem::MemoryNetwork;
use common::*;

#[tokio::test(start_paused = true)]
async fn route_opens_after_n_dial_failures_and_probes_after_the_cooldown() {
    let net = MemoryNetwork::new();
    let mut cfg = config();
    cfg.breaker = BreakerConfig {
        consecutive_failures: 3,
        base_cooldown: Duration::from_secs(2),
        jitter: 0.0,
        ..BreakerConfig::default()
    };
    let (s, mut es, _, _) = mem_node(&net, cfg).await;
    let kr = Keypair::generate();
    let route = TransportAddress::Memory(77);
    // Nothing listens on memory://77 yet: three dial failures.
    for n in 1..=3 {
        let err = s
            .connect_to_peer(kr.peer_id(), vec![route.clone()])
            .await
            .unwrap_err();
        assert!(
            matches!(err, CoordinatorError::AllRoutesFailed { .. }),
            "{err:?}"
        );
        if n < 3 {
            assert!(es
                .try_recv()
                .into_iter()
                .all(|e| !matches!(e, CoordinatorEvent::Breaker { .. })));
        }
    }
    let state = wait_for(&mut es, |e| match e {
        CoordinatorEvent::Breaker {
            route: r, state, ..
        } if *r == route => Some(*state),
        _ => None,
    })
    .await;
    assert!(matches!(state, BreakerState::Open { .. }));
    assert_eq!(s.stats().totals.breaker_trips, 1);

    // The peer comes up, but the breaker is open: no dial is even attempted.
    let (r, _er) = node(vec![mem(&net, &kr)], config());
    assert_eq!(r.listen(&route).await.unwrap(), route);
    let err = s
        .connect_to_peer(kr.peer_id(), vec![route.clone()])
        .await
        .unwrap_err();
    match err {
        CoordinatorError::AllRoutesFailed { failures, .. } => {
            assert!(
                matches!(
                    failures[..],
                    [bitcraps_coordinator::RouteFailure {
                        error: bitcraps_coordinator::RouteError::BreakerOpen { .. },
                        ..
                    }]
                ),
                "{failures:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Just before the cooldown ends, still open.
    tokio::time::advance(Duration::from_millis(1_999)).await;
    assert!(s
        .connect_to_peer(kr.peer_id(), vec![route.clone()])
        .await
        .is_err());
    // After it: HalfOpen admits one probe, which succeeds and closes the breaker.
    tokio::time::advance(Duration::from_millis(1)).await;
    s.connect_to_peer(kr.peer_id(), vec![route.clone()])
        .await
        .unwrap();
    // The probe's outcome is its first health check (sent at once).
    let mut states = Vec::new();
    while states.last() != Some(&BreakerState::Closed) {
        states.push(
            wait_for(&mut es, |e| match e {
                CoordinatorEvent::Breaker { state, .. } => Some(*state),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(states, vec![BreakerState::HalfOpen, BreakerState::Closed]);
}
