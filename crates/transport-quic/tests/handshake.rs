//! Identity: both sides prove their `PeerId`; a wrong expectation fails with `PeerMismatch`;
//! the Retry path and address reporting work.

mod common;

use bitcraps_transport_core::{
    ChannelConfig, Error, Inbound, Keypair, SharedLimiter, Transport, TransportAddress,
    TransportKind,
};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};
use common::{guard, loopback, pair, transport};

#[tokio::test]
async fn both_sides_prove_their_identity() {
    let server = transport();
    let client = transport();
    let (_listener, dialed, accepted) = pair(&server, &client).await;
    assert_eq!(dialed.remote_peer(), server.local_peer_id());
    assert_eq!(accepted.remote_peer(), client.local_peer_id());
    assert_eq!(dialed.info().local_peer, client.local_peer_id());
    assert!(dialed.info().outbound);
    assert!(!accepted.info().outbound);
    assert_eq!(dialed.info().kind, TransportKind::Quic);
    // Each side sees the other's real address.
    assert_eq!(&dialed.info().remote_addr, _listener.local_addr());
    assert_eq!(accepted.info().remote_addr, dialed.info().local_addr);
}

#[tokio::test]
async fn dial_without_expectation_learns_the_identity() {
    let server = transport();
    let client = transport();
    let mut listener = server.listen(&loopback()).await.unwrap();
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = guard("dial", async {
        tokio::join!(client.dial(&addr, None), listener.accept_connection())
    })
    .await;
    assert_eq!(dialed.unwrap().remote_peer(), server.local_peer_id());
    assert_eq!(accepted.unwrap().remote_peer(), client.local_peer_id());
}

#[tokio::test]
async fn wrong_expected_peer_fails_with_peer_mismatch() {
    let server = transport();
    let client = transport();
    let mut listener = server.listen(&loopback()).await.unwrap();
    let addr = listener.local_addr().clone();
    let wrong = Keypair::generate().peer_id();
    let err = guard("dial", client.dial(&addr, Some(wrong)))
        .await
        .unwrap_err();
    match err {
        Error::PeerMismatch { expected, actual } => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, server.local_peer_id());
        }
        other => panic!("expected PeerMismatch, got {other:?}"),
    }
    // The listener saw a failed attempt, not a connection, and still serves.
    match guard("refusal", listener.accept()).await.unwrap() {
        Inbound::Refused { .. } => {}
        Inbound::Connection(c) => panic!("a connection was accepted: {c:?}"),
        _ => unreachable!(),
    }
    let expect = Some(server.local_peer_id());
    let (ok, accepted) = guard("second dial", async {
        tokio::join!(client.dial(&addr, expect), listener.accept_connection())
    })
    .await;
    assert_eq!(ok.unwrap().remote_peer(), server.local_peer_id());
    assert_eq!(accepted.unwrap().remote_peer(), client.local_peer_id());
    assert_eq!(listener.stats().failed_handshakes, 1);
    assert_eq!(listener.stats().accepted, 1);
}

#[tokio::test]
async fn always_retry_validates_addresses_and_still_connects() {
    let config = QuicConfig {
        always_retry: true,
        ..common::config(ChannelConfig::default())
    };
    let server =
        QuicTransport::with_limiter(Keypair::generate(), config, SharedLimiter::unlimited())
            .unwrap();
    let client = transport();
    let (_l, dialed, mut accepted) = pair(&server, &client).await;
    dialed.send("after retry".into()).await.unwrap();
    assert_eq!(
        guard("recv", accepted.recv()).await.unwrap().as_deref(),
        Some(&b"after retry"[..])
    );
}

#[tokio::test]
async fn listening_on_port_zero_reports_the_real_port() {
    let server = transport();
    let listener = server.listen(&loopback()).await.unwrap();
    match listener.local_addr() {
        TransportAddress::Quic(a) => {
            assert_ne!(a.port(), 0);
            assert!(a.ip().is_loopback());
        }
        other => panic!("unexpected address {other}"),
    }
}

#[tokio::test]
async fn other_addresses_are_unsupported() {
    let t = transport();
    let tcp: TransportAddress = "tcp://127.0.0.1:1".parse().unwrap();
    assert!(!t.supports(&tcp));
    assert!(t.supports(&loopback()));
    assert!(t.dial(&tcp, None).await.unwrap_err().is_unsupported());
    assert!(matches!(t.listen(&tcp).await, Err(e) if e.is_unsupported()));
    assert_eq!(t.kind(), TransportKind::Quic);
    let caps = t.capabilities();
    assert!(caps.reliable && caps.ordered);
    assert_eq!(
        caps.max_message_size,
        ChannelConfig::default().max_message_size
    );
}

#[tokio::test]
async fn ipv6_loopback_works_when_available() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        return; // No IPv6 on this machine.
    }
    let server = transport();
    let client = transport();
    let mut listener = server
        .listen(&"quic://[::1]:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let expect = Some(server.local_peer_id());
    let (dialed, accepted) = guard("dial v6", async {
        tokio::join!(client.dial(&addr, expect), listener.accept_connection())
    })
    .await;
    assert_eq!(dialed.unwrap().remote_peer(), server.local_peer_id());
    assert_eq!(accepted.unwrap().remote_peer(), client.local_peer_id());
}
