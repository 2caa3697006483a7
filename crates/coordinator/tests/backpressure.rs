//! The event stream is bounded: a consumer that stops reading backpressures data (the
//! sender's window fills and `send_to_peer` waits) and gets `Lagged` for other events.

mod common;

use std::time::Duration;

use bitcraps_coordinator::{CoordinatorError, CoordinatorEvent, Priority};
use bitcraps_transport_mem::MemoryNetwork;
use common::*;

#[tokio::test(start_paused = true)]
async fn a_consumer_that_stops_reading_backpressures_the_sender() {
    let net = MemoryNetwork::new();
    let mut rc = config();
    rc.event_queue = 16;
    let (r, mut er, r_addr, _) = mem_node(&net, rc).await;
    let mut sc = config();
    sc.max_unacked = 64;
    sc.send_timeout = Duration::from_secs(2);
    let (s, _es, _, _) = mem_node(&net, sc).await;
    let pr = r.local_peer_id();
    s.connect_to_peer(pr, vec![r_addr]).await.unwrap();
    // R's consumer reads nothing while S sends as much as it can.
    let mut accepted = 0u32;
    let err = loop {
        match s.send_to_peer(pr, msg(accepted), Priority::Bulk).await {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 10_000, "the sender was never held back");
    };
    assert!(
        matches!(err, CoordinatorError::WindowTimeout { .. }),
        "{err:?}"
    );
    // Window (64) + the event queue (16, one Connected among them) + one event in hand.
    assert!(accepted <= 64 + 16 + 1, "accepted {accepted}");
    assert!(er.len() <= 16);
    // Reading resumes: everything accepted arrives, once, in order.
    for i in 0..accepted {
        assert_eq!(num(&next_data(&mut er, s.local_peer_id()).await), i);
    }
    s.send_to_peer(pr, msg(accepted), Priority::Bulk)
        .await
        .unwrap();
    assert_eq!(num(&next_data(&mut er, s.local_peer_id()).await), accepted);
}

#[tokio::test(start_paused = true)]
async fn dropped_control_events_are_reported_as_lagged() {
    let net = MemoryNetwork::new();
    let mut rc = config();
    rc.event_queue = 4;
    let (r, mut er, _, _) = mem_node(&net, rc).await;
    let mut others = Vec::new();
    for _ in 0..10 {
        let (c, e, addr, _) = mem_node(&net, config()).await;
        // `Connected` is emitted before connect_to_peer returns.
        r.connect_to_peer(c.local_peer_id(), vec![addr])
            .await
            .unwrap();
        others.push((c, e));
    }
    // Ten Connected events for a queue of four, nobody reading.
    let mut connected = 0;
    let mut missed = 0;
    while let Some(e) = er.try_recv() {
        match e {
            CoordinatorEvent::Connected { .. } => connected += 1,
            CoordinatorEvent::Lagged { missed: m } => missed += m,
            _ => {}
        }
    }
    assert_eq!(connected, 4);
    assert_eq!(connected + missed, 10);
    assert_eq!(r.peers().len(), 10);
}
