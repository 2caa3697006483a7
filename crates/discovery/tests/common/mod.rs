//! Shared by the discovery tests (mDNS on loopback, BLE on the simulated radio): waiting for a
//! coordinator event, and one bet crossing between two coordinators with its receipt.

use std::time::Duration;

use bitcraps_coordinator::{CoordinatorEvent, EventStream, Priority, TransportCoordinator};
use bitcraps_transport_core::PeerId;

/// Waits (at most `guard`) for the first event `pick` accepts.
pub(crate) async fn wait_event<T>(
    events: &mut EventStream,
    guard: Duration,
    mut pick: impl FnMut(&CoordinatorEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(guard, async {
        loop {
            let event = events.recv().await.expect("coordinator alive");
            if let Some(t) = pick(&event) {
                return t;
            }
        }
    })
    .await
    .expect("the event in time")
}

/// `from` sends a bet to `to` (whose events are `to_events`): it arrives from `from`'s peer id,
/// and its receipt resolves delivered.
pub(crate) async fn bet_crosses(
    from: &TransportCoordinator,
    to: PeerId,
    to_events: &mut EventStream,
    guard: Duration,
) {
    let sender = from.local_peer_id();
    let receipt = from
        .send_with_receipt(to, "bet 5 on 7".into(), Priority::Interactive)
        .await
        .expect("accepted");
    let data = wait_event(to_events, guard, |e| match e {
        CoordinatorEvent::DataReceived { peer, data } if *peer == sender => Some(data.clone()),
        _ => None,
    })
    .await;
    assert_eq!(&data[..], b"bet 5 on 7");
    tokio::time::timeout(guard, receipt)
        .await
        .expect("receipt in time")
        .expect("delivered");
}
