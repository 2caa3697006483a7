//! The UDP backend on loopback sockets: identity, sizes, many messages, many peers, garbage to
//! the listener, slow applications, limits and close. Replay and tampering: `relay.rs`.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use bitcraps_transport_core::policy::LimitKind;
use bitcraps_transport_core::{
    CloseReason, ConnectionLimits, Error, Keypair, Transport, TransportAddress,
};
use bitcraps_transport_udp::{UdpConfig, UdpTransport};

mod common;

use common::{guard, listen, pair, transport};

#[tokio::test]
async fn both_sides_prove_their_identity_and_the_real_port_is_reported() {
    let (server, client, listener, conn, mut accepted) = pair().await;
    let TransportAddress::Udp(addr) = listener.local_addr() else {
        panic!("a udp address")
    };
    assert_ne!(addr.port(), 0);
    assert_eq!(conn.remote_peer(), server.local_peer_id());
    assert_eq!(accepted.remote_peer(), client.local_peer_id());
    assert!(conn.info().outbound && !accepted.info().outbound);
    assert_eq!(server.capabilities().max_message_size, 1200);
    assert!(!server.capabilities().reliable && !server.capabilities().ordered);
    conn.send("roll".into()).await.unwrap();
    assert_eq!(
        guard(accepted.recv()).await.unwrap().as_deref(),
        Some(&b"roll"[..])
    );
    accepted.send("7".into()).await.unwrap();
    let mut conn = conn;
    assert_eq!(
        guard(conn.recv()).await.unwrap().as_deref(),
        Some(&b"7"[..])
    );
    assert_eq!(listener.stats().accepted, 1);
}

#[tokio::test]
async fn a_dial_expecting_another_peer_fails_and_the_listener_keeps_serving() {
    let server = transport(ConnectionLimits::unlimited());
    let client = transport(ConnectionLimits::unlimited());
    let mut listener = listen(&server).await;
    let addr = listener.local_addr().clone();
    let wrong = Keypair::generate().peer_id();
    match guard(client.dial(&addr, Some(wrong))).await {
        Err(Error::PeerMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, server.local_peer_id());
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let conn = guard(client.dial(&addr, None)).await.unwrap();
    let accepted = guard(listener.accept_connection()).await.unwrap();
    assert_eq!(accepted.remote_peer(), client.local_peer_id());
    assert_eq!(conn.remote_peer(), server.local_peer_id());
}

#[tokio::test]
async fn a_thousand_messages_arrive_authentic_and_never_twice() {
    let (_server, _client, _listener, conn, accepted) = pair().await;
    let (ack_tx, mut acks) = mpsc::channel(4);
    let (acks_out, mut receiver) = accepted.split();
    let reader = tokio::spawn(async move {
        let mut seen = HashSet::new();
        while let Ok(Some(m)) = receiver.recv().await {
            let i = u32::from_be_bytes(m[..4].try_into().unwrap());
            assert_eq!(m.len(), 64);
            assert!(
                m[4..].iter().all(|&b| b == i as u8),
                "message {i} is authentic"
            );
            assert!(seen.insert(i), "message {i} delivered twice");
            if seen.len() % 50 == 0 {
                acks_out
                    .send(Bytes::from(seen.len().to_string()))
                    .await
                    .unwrap();
            }
            if seen.len() == 1000 {
                break;
            }
        }
        let _ = ack_tx.send(seen.len()).await;
        seen.len()
    });
    let (sender, mut conn_rx) = conn.split();
    for batch in 0..20u32 {
        for i in batch * 50..(batch + 1) * 50 {
            let mut m = vec![i as u8; 64];
            m[..4].copy_from_slice(&i.to_be_bytes());
            sender.send(m.into()).await.unwrap();
        }
        // Windowed, so loopback never has to drop: wait for the reader's count of this batch.
        let ack = guard(conn_rx.recv()).await.unwrap().unwrap();
        assert_eq!(ack, Bytes::from(((batch + 1) * 50).to_string()));
    }
    assert_eq!(guard(reader).await.unwrap(), 1000);
    assert_eq!(guard(acks.recv()).await, Some(1000));
    assert_eq!(sender.stats().messages_sent, 1000);
}

#[tokio::test]
async fn the_maximum_passes_and_one_more_byte_is_refused_without_harm() {
    let (_server, _client, _listener, conn, mut accepted) = pair().await;
    let max = vec![0xAB; 1200];
    conn.send(max.clone().into()).await.unwrap();
    assert_eq!(guard(accepted.recv()).await.unwrap().unwrap(), max);
    match conn.send(vec![0; 1201].into()).await {
        Err(Error::MessageTooLarge { len, max }) => assert_eq!((len, max), (1201, 1200)),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    conn.send(Bytes::new()).await.unwrap();
    assert_eq!(guard(accepted.recv()).await.unwrap().unwrap().len(), 0);
}

#[tokio::test]
async fn a_small_max_payload_still_handshakes_and_carries_its_maximum() {
    // Handshake datagrams (202 bytes) are larger than a 64-byte payload's datagram: the limit
    // on what is read must not drop them (the dial used to run into its handshake timeout).
    let config = || UdpConfig {
        max_payload: 64,
        ..UdpConfig::default()
    };
    let server = UdpTransport::with_config(Keypair::generate(), config());
    let client = UdpTransport::with_config(Keypair::generate(), config());
    let mut listener = listen(&server).await;
    let addr = listener.local_addr().clone();
    let conn = guard(client.dial(&addr, Some(server.local_peer_id())))
        .await
        .expect("the dial completes");
    let mut accepted = guard(listener.accept_connection()).await.unwrap();
    conn.send(vec![7; 64].into()).await.unwrap();
    assert_eq!(guard(accepted.recv()).await.unwrap().unwrap(), vec![7; 64]);
    assert!(matches!(
        conn.send(vec![0; 65].into()).await,
        Err(Error::MessageTooLarge { len: 65, max: 64 })
    ));
}

#[tokio::test]
async fn garbage_datagrams_leave_the_listener_serving() {
    let server = transport(ConnectionLimits::unlimited());
    let mut listener = listen(&server).await;
    let addr = listener.local_addr().clone();
    let TransportAddress::Udp(target) = addr else {
        panic!()
    };
    let junk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x01],
        vec![0x01; 38],
        vec![0x01; 203],
        vec![0x02; 202],
        vec![0x03; 166],
        vec![0x04; 64],
        vec![0x05; 64],
        vec![0xFF; 1000],
        vec![0x05; 60_000],
    ];
    for i in 0..50u8 {
        garbage.push(
            (0..(i as usize * 7))
                .map(|j| (j as u8).wrapping_mul(i))
                .collect(),
        );
    }
    for g in &garbage {
        junk.send_to(g, target).await.unwrap();
    }
    let client = transport(ConnectionLimits::unlimited());
    let conn = guard(client.dial(&addr, Some(server.local_peer_id())))
        .await
        .unwrap();
    let mut accepted = guard(listener.accept_connection()).await.unwrap();
    conn.send("still here".into()).await.unwrap();
    assert_eq!(
        guard(accepted.recv()).await.unwrap().as_deref(),
        Some(&b"still here"[..])
    );
    assert!(server.datagram_stats().dropped_unknown >= 10);
    assert_eq!(listener.stats().accepted, 1);
}

#[tokio::test]
async fn close_is_seen_remotely_both_ways() {
    let (_server, _client, _listener, conn, mut accepted) = pair().await;
    guard(conn.close("game over")).await.unwrap();
    assert_eq!(guard(accepted.recv()).await.unwrap(), None);
    assert_eq!(
        accepted.close_reason(),
        Some(CloseReason::Remote("game over".into()))
    );
    assert!(matches!(
        conn.send("late".into()).await,
        Err(Error::Closed(_))
    ));

    let (_server, _client, _listener, mut conn, accepted) = pair().await;
    guard(accepted.close("house closes")).await.unwrap();
    assert_eq!(guard(conn.recv()).await.unwrap(), None);
    assert_eq!(
        conn.close_reason(),
        Some(CloseReason::Remote("house closes".into()))
    );
}

#[tokio::test]
async fn a_per_peer_limit_refusal_reaches_the_dialer() {
    let limits = ConnectionLimits {
        max_connections_per_peer: 1,
        ..ConnectionLimits::unlimited()
    };
    let server = transport(limits);
    let client = transport(ConnectionLimits::unlimited());
    let mut listener = listen(&server).await;
    let addr = listener.local_addr().clone();
    let _first = guard(client.dial(&addr, None)).await.unwrap();
    let _accepted = guard(listener.accept_connection()).await.unwrap();
    match guard(client.dial(&addr, None)).await {
        Err(Error::RemoteLimit(r)) => assert_eq!(r.limit, LimitKind::ConnectionsPerPeer),
        other => panic!("expected a remote limit, got {other:?}"),
    }
    assert_eq!(listener.stats().refused_by_limit, 1);
}

#[tokio::test]
async fn close_frees_the_port_and_other_schemes_are_unsupported() {
    let server = transport(ConnectionLimits::unlimited());
    let mut listener = listen(&server).await;
    let TransportAddress::Udp(addr) = listener.local_addr().clone() else {
        panic!()
    };
    guard(listener.close()).await;
    assert!(matches!(
        listener.accept().await,
        Err(Error::ListenerClosed)
    ));
    UdpSocket::bind(addr).await.expect("the port is free again");
    let tcp: TransportAddress = "tcp://127.0.0.1:1".parse().unwrap();
    assert!(!server.supports(&tcp));
    assert!(matches!(server.listen(&tcp).await, Err(e) if e.is_unsupported()));
    assert!(server.dial(&tcp, None).await.unwrap_err().is_unsupported());
}

#[tokio::test]
async fn handshakes_over_the_source_rate_are_refused_before_any_work() {
    let limits = ConnectionLimits {
        max_new_connections_per_minute: 1,
        ..ConnectionLimits::unlimited()
    };
    let server = transport(limits);
    let mut listener = listen(&server).await;
    let addr = listener.local_addr().clone();
    let mut config = UdpConfig::default();
    config.channel.handshake_timeout = Duration::from_millis(300);
    config.limits = ConnectionLimits::unlimited();
    let client = UdpTransport::with_config(Keypair::generate(), config);
    let _first = guard(client.dial(&addr, None)).await.unwrap();
    let _accepted = guard(listener.accept_connection()).await.unwrap();
    // The second initiation from the same address gets no answer at all: the dial times out.
    match guard(client.dial(&addr, None)).await {
        Err(Error::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    match guard(listener.accept()).await.unwrap() {
        bitcraps_transport_core::Inbound::Refused {
            error: Error::Limit(r),
            ..
        } => assert_eq!(r.limit, LimitKind::NewConnectionRate),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(listener.stats().refused_by_limit >= 1);
}

#[tokio::test]
async fn a_slow_application_never_stalls_the_shared_socket() {
    let (server, _client, mut listener, flood, mut stalled) = pair().await;
    // `stalled` is never read while 2,000 datagrams arrive for it.
    for i in 0..2000u32 {
        flood.send(Bytes::from(vec![i as u8; 1000])).await.unwrap();
    }
    let other = transport(ConnectionLimits::unlimited());
    let conn = guard(other.dial(listener.local_addr(), None))
        .await
        .unwrap();
    let mut accepted = guard(listener.accept_connection()).await.unwrap();
    conn.send("served".into()).await.unwrap();
    assert_eq!(
        guard(accepted.recv()).await.unwrap().as_deref(),
        Some(&b"served"[..])
    );
    // The stalled connection still works once its application reads again.
    let first = guard(stalled.recv()).await.unwrap().unwrap();
    assert_eq!(first.len(), 1000);
    let stats = server.datagram_stats();
    assert_eq!(stats.dropped_replayed + stats.dropped_unauthentic, 0);
}

#[tokio::test]
async fn a_closed_listener_keeps_its_connections_but_answers_no_new_handshake() {
    let (server, _client, mut listener, conn, mut accepted) = pair().await;
    guard(listener.close()).await;
    conn.send("still dealing".into()).await.unwrap();
    assert_eq!(
        guard(accepted.recv()).await.unwrap().as_deref(),
        Some(&b"still dealing"[..])
    );
    let mut config = UdpConfig::default();
    config.channel.handshake_timeout = Duration::from_millis(300);
    let late = UdpTransport::with_config(Keypair::generate(), config);
    let addr = listener.local_addr().clone();
    match guard(late.dial(&addr, Some(server.local_peer_id()))).await {
        Err(Error::Timeout { .. }) => {}
        other => panic!("expected no answer (a timeout), got {other:?}"),
    }
}

#[tokio::test]
async fn a_dial_to_a_closed_port_fails_fast() {
    let free = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = TransportAddress::Udp(free.local_addr().unwrap());
    drop(free);
    let client = transport(ConnectionLimits::unlimited());
    match guard(client.dial(&addr, None)).await {
        Err(Error::Io { .. }) => {}
        other => panic!("expected an I/O error (port unreachable), got {other:?}"),
    }
}

#[tokio::test]
async fn one_listening_socket_serves_many_peers_at_once() {
    let server = transport(ConnectionLimits::unlimited());
    let mut listener = listen(&server).await;
    let addr = listener.local_addr().clone();
    let expect = server.local_peer_id();
    let dials = (0..8u8).map(|i| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let client = transport(ConnectionLimits::unlimited());
            let mut conn = client.dial(&addr, Some(expect)).await.unwrap();
            conn.send(Bytes::from(vec![i; 10])).await.unwrap();
            let echo = conn.recv().await.unwrap().unwrap();
            assert_eq!(
                echo,
                Bytes::from(vec![i; 10]),
                "each peer gets its own echo"
            );
            (client.local_peer_id(), conn)
        })
    });
    let dials: Vec<_> = dials.collect();
    let mut peers = HashSet::new();
    for _ in 0..8 {
        let mut accepted = guard(listener.accept_connection()).await.unwrap();
        peers.insert(accepted.remote_peer());
        tokio::spawn(async move {
            while let Ok(Some(m)) = accepted.recv().await {
                if accepted.send(m).await.is_err() {
                    break;
                }
            }
        });
    }
    for d in dials {
        let (peer, _conn) = guard(d).await.unwrap();
        assert!(peers.contains(&peer));
    }
    assert_eq!(peers.len(), 8);
    assert_eq!(listener.stats().accepted, 8);
}
