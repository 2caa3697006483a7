//! Hostile and misbehaving peers: malformed envelopes, receive-rate floods. The coordinator
//! closes the offender with a typed reason and keeps serving everyone else.

mod common;

use bitcraps_coordinator::{CoordinatorEvent, DisconnectReason, Priority};
use bitcraps_transport_core::policy::RateLimits;
use bitcraps_transport_core::{Bytes, Keypair, Transport};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use common::*;

#[tokio::test(start_paused = true)]
async fn malformed_envelopes_close_the_connection_and_others_are_served() {
    let net = MemoryNetwork::new();
    let (c, mut events, addr, _) = mem_node(&net, config()).await;
    let evil = MemoryTransport::new(&net, Keypair::generate());
    let pe = evil.local_peer_id();
    let frames = [
        &[0x09u8, 1, 2][..],              // unknown type
        &[0x01, 0, 0, 0][..],             // DATA shorter than its header
        &[0x02, 0, 0, 0, 0, 0, 0, 0][..], // ACK with a partial id
        &[0x03][..],                      // PING without a nonce
        &[][..],                          // empty
    ];
    for frame in frames {
        let mut raw = evil.dial(&addr, Some(c.local_peer_id())).await.unwrap();
        // A valid DATA first: delivered.
        let mut good = vec![0x01u8, 0, 0, 0, 0, 0, 0, 0, 1];
        good.extend_from_slice(b"ok");
        raw.send(Bytes::from(good)).await.unwrap();
        raw.send(Bytes::copy_from_slice(frame)).await.unwrap();
        let error = wait_for(&mut events, |e| match e {
            CoordinatorEvent::Error {
                peer: Some(p),
                error,
            } if *p == pe => Some(error.clone()),
            _ => None,
        })
        .await;
        assert!(error.contains("protocol violation"), "{error}");
        // The coordinator closes the connection: the raw side sees the end.
        // (PINGs and ACKs may come first.)
        while let Ok(Some(_)) = raw.recv().await {}
    }
    // Everyone else is still served.
    let (other, _oe, other_addr, _) = mem_node(&net, config()).await;
    c.connect_to_peer(other.local_peer_id(), vec![other_addr])
        .await
        .unwrap();
    other
        .send_to_peer(c.local_peer_id(), msg(42), Priority::Interactive)
        .await
        .unwrap();
    assert_eq!(
        num(&next_data(&mut events, other.local_peer_id()).await),
        42
    );
}

#[tokio::test(start_paused = true)]
async fn a_flooding_peer_is_rate_limited_then_disconnected() {
    let net = MemoryNetwork::new();
    let mut rc = config();
    rc.rate_limits = RateLimits {
        messages_per_second: 1,
        message_burst: 10,
        ..RateLimits::default()
    };
    rc.flood_disconnect_after = 50;
    let (r, mut er, r_addr, _) = mem_node(&net, rc).await;
    let (s, _es, _, _) = mem_node(&net, config()).await;
    let ps = s.local_peer_id();
    s.connect_to_peer(r.local_peer_id(), vec![r_addr])
        .await
        .unwrap();
    for i in 0..200 {
        s.send_to_peer(r.local_peer_id(), msg(i), Priority::Bulk)
            .await
            .unwrap();
    }
    let mut delivered = Vec::new();
    let reason = wait_for(&mut er, |e| match e {
        CoordinatorEvent::DataReceived { peer, data } if *peer == ps => {
            delivered.push(num(data));
            None
        }
        CoordinatorEvent::Disconnected { peer, reason } if *peer == ps => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::RateLimitFlood);
    // The burst got through (time barely moves while the flood is processed), in order.
    assert!(
        delivered.len() >= 10 && delivered.len() < 60,
        "{}",
        delivered.len()
    );
    assert_eq!(delivered, (0..delivered.len() as u32).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn idle_peers_are_disconnected_when_configured() {
    let net = MemoryNetwork::new();
    let mut cfg = config();
    cfg.idle_timeout = Some(std::time::Duration::from_secs(30));
    let (a, mut ea, _, _) = mem_node(&net, cfg).await;
    let (b, _eb, b_addr, _) = mem_node(&net, config()).await;
    a.connect_to_peer(b.local_peer_id(), vec![b_addr])
        .await
        .unwrap();
    a.send_to_peer(b.local_peer_id(), msg(1), Priority::Bulk)
        .await
        .unwrap();
    let last = tokio::time::Instant::now();
    let reason = wait_for(&mut ea, |e| match e {
        CoordinatorEvent::Disconnected { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::Idle);
    // PINGs kept flowing meanwhile (keep-alive is separate from the idle policy).
    assert!(last.elapsed() >= std::time::Duration::from_secs(30));
}
