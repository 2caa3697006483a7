//! Hostile and misbehaving peers: malformed envelopes, a peer ignoring its window, and the
//! receive rate limit as flow control. The coordinator ends the offender's session with a
//! typed reason and keeps serving everyone else.

mod common;

use bitcraps_coordinator::envelope::{
    CloseCode, Envelope, Envelopes, FrameBuilder, Hello, LaneState,
};
use bitcraps_coordinator::{CoordinatorEvent, DisconnectReason, Priority};
use bitcraps_transport_core::policy::RateLimits;
use bitcraps_transport_core::{Bytes, Keypair, Transport};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use bytes::BytesMut;
use common::*;

/// A `HELLO` of a hand-written peer (session 77, a window of 8 messages).
fn hello() -> Bytes {
    let mut f = FrameBuilder::new(BytesMut::new(), 1024);
    f.hello(&Hello {
        flags: 0,
        session: 77,
        window_messages: 8,
        window_bytes: 1 << 20,
        your_session: 0,
        lanes: [LaneState::default(); 2],
    });
    f.finish().0
}

fn data(seq: u64, payload: &[u8]) -> Bytes {
    let mut f = FrameBuilder::new(BytesMut::new(), 1 << 16);
    f.data(1, seq, payload);
    f.finish().0
}

#[tokio::test(start_paused = true)]
async fn malformed_envelopes_end_the_session_and_others_are_served() {
    let net = MemoryNetwork::new();
    let (c, mut events, addr, _) = mem_node(&net, config()).await;
    let evil = MemoryTransport::new(&net, Keypair::generate());
    let pe = evil.local_peer_id();
    let frames = [
        &[0x09u8, 1, 2][..],                    // unknown type
        &[0x11, 1, 0, 0, 0][..],                // DATA shorter than its header
        &[0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0][..], // ACK cut short
        &[0x14][..],                            // PING without a nonce
        &[][..],                                // empty
    ];
    for frame in frames {
        let mut raw = evil.dial(&addr, Some(c.local_peer_id())).await.unwrap();
        // A valid HELLO and DATA first: delivered.
        raw.send(hello()).await.unwrap();
        raw.send(data(0, b"ok")).await.unwrap();
        assert_eq!(&next_data(&mut events, pe).await[..], b"ok");
        raw.send(Bytes::copy_from_slice(frame)).await.unwrap();
        let reason = wait_for(&mut events, |e| match e {
            CoordinatorEvent::Disconnected { peer, reason } if *peer == pe => Some(reason.clone()),
            _ => None,
        })
        .await;
        assert!(matches!(reason, DisconnectReason::Protocol(_)), "{reason}");
        // The coordinator closes the connection: the raw side sees the end.
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
async fn a_peer_writing_past_its_window_is_disconnected_with_a_typed_close() {
    let net = MemoryNetwork::new();
    let (c, mut events, addr, _) = mem_node(&net, config()).await;
    let evil = MemoryTransport::new(&net, Keypair::generate());
    let pe = evil.local_peer_id();
    let mut raw = evil.dial(&addr, Some(c.local_peer_id())).await.unwrap();
    raw.send(hello()).await.unwrap();
    // The window granted is the coordinator's recv_window (1,024): seq 5,000 is past it.
    raw.send(data(5_000, b"flood")).await.unwrap();
    let reason = wait_for(&mut events, |e| match e {
        CoordinatorEvent::Disconnected { peer, reason } if *peer == pe => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(reason, DisconnectReason::FlowControl), "{reason}");
    // The offender is told why before the connection closes.
    let mut codes = Vec::new();
    while let Ok(Some(frame)) = raw.recv().await {
        for env in Envelopes::new(frame).flatten() {
            if let Envelope::Close(code) = env {
                codes.push(code);
            }
        }
    }
    assert_eq!(codes, vec![CloseCode::FlowControl]);
}

#[tokio::test(start_paused = true)]
async fn the_receive_rate_limit_slows_the_sender_and_drops_nothing() {
    let net = MemoryNetwork::new();
    let mut rc = config();
    rc.rate_limits = RateLimits {
        messages_per_second: 10,
        message_burst: 10,
        ..RateLimits::default()
    };
    let (r, mut er, r_addr, _) = mem_node(&net, rc).await;
    let (s, _es, _, _) = mem_node(&net, config()).await;
    let ps = s.local_peer_id();
    s.connect_to_peer(r.local_peer_id(), vec![r_addr])
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    for i in 0..60 {
        s.send_to_peer(r.local_peer_id(), msg(i), Priority::Bulk)
            .await
            .unwrap();
    }
    let mut delivered = Vec::new();
    while delivered.len() < 60 {
        delivered.push(num(&next_data(&mut er, ps).await));
    }
    assert_eq!(delivered, (0..60).collect::<Vec<_>>());
    // 10 in the burst, then 10 a second.
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    assert_eq!(r.stats().per_peer[0].duplicates, 0);
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
    assert!(matches!(reason, DisconnectReason::Idle), "{reason}");
    // PINGs kept flowing meanwhile (keep-alive is separate from the idle policy).
    assert!(last.elapsed() >= std::time::Duration::from_secs(30));
}
