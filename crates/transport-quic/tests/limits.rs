//! Limits: per-peer refusal after the handshake reaches the dialer as `RemoteLimit`; the
//! per-source rate refuses before the handshake; a failed dial backs off the next one.

mod common;

use bitcraps_transport_core::{
    ChannelConfig, ConnectionLimits, Error, Inbound, Keypair, LimitKind, SharedLimiter, Transport,
};
use common::{guard, loopback, transport, transport_with};

fn limits(f: impl FnOnce(&mut ConnectionLimits)) -> SharedLimiter {
    let mut l = ConnectionLimits::unlimited();
    f(&mut l);
    SharedLimiter::new(l)
}

#[tokio::test]
async fn second_connection_of_a_peer_gets_remote_limit() {
    let server = transport_with(
        ChannelConfig::default(),
        limits(|l| l.max_connections_per_peer = 1),
    );
    let client = transport();
    let mut listener = server.listen(&loopback()).await.unwrap();
    let addr = listener.local_addr().clone();
    let expect = Some(server.local_peer_id());
    let (first, accepted) = guard("first", async {
        tokio::join!(client.dial(&addr, expect), listener.accept_connection())
    })
    .await;
    let (first, _accepted) = (first.unwrap(), accepted.unwrap());
    let second = guard("second", client.dial(&addr, expect)).await;
    match second {
        Err(Error::RemoteLimit(r)) => {
            assert_eq!(r.limit, LimitKind::ConnectionsPerPeer);
            assert_eq!(r.retry_after, None);
        }
        other => panic!("expected RemoteLimit, got {other:?}"),
    }
    match guard("refusal", listener.accept()).await.unwrap() {
        Inbound::Refused { error, .. } => assert!(matches!(
            error.limit_rejection().map(|r| r.limit),
            Some(LimitKind::ConnectionsPerPeer)
        )),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Another peer is still welcome, and the first connection still works.
    let other = transport();
    let (third, acc) = guard("other peer", async {
        tokio::join!(other.dial(&addr, expect), listener.accept_connection())
    })
    .await;
    assert!(third.is_ok() && acc.is_ok());
    first.send("still here".into()).await.unwrap();
    assert_eq!(server.limiter().snapshot().active_connections, 2);
}

#[tokio::test]
async fn a_freed_slot_admits_the_peer_again() {
    let server = transport_with(
        ChannelConfig::default(),
        limits(|l| l.max_connections_per_peer = 1),
    );
    let client = transport();
    let mut listener = server.listen(&loopback()).await.unwrap();
    let addr = listener.local_addr().clone();
    let expect = Some(server.local_peer_id());
    let (first, accepted) = guard("first", async {
        tokio::join!(client.dial(&addr, expect), listener.accept_connection())
    })
    .await;
    let (first, accepted) = (first.unwrap(), accepted.unwrap());
    guard("close", first.close("done")).await.unwrap();
    guard("server side ends", accepted.sender().closed()).await;
    let (again, acc) = guard("again", async {
        tokio::join!(client.dial(&addr, expect), listener.accept_connection())
    })
    .await;
    assert!(again.is_ok() && acc.is_ok());
}

#[tokio::test]
async fn source_rate_refuses_before_the_handshake() {
    let server = transport_with(
        ChannelConfig::default(),
        limits(|l| l.max_new_connections_per_minute = 1),
    );
    let client = transport();
    let mut listener = server.listen(&loopback()).await.unwrap();
    let addr = listener.local_addr().clone();
    let expect = Some(server.local_peer_id());
    let (first, accepted) = guard("first", async {
        tokio::join!(client.dial(&addr, expect), listener.accept_connection())
    })
    .await;
    assert!(first.is_ok() && accepted.is_ok());
    let second = guard("second", client.dial(&addr, expect)).await;
    assert!(second.is_err(), "the second handshake must be refused");
    match guard("refusal", listener.accept()).await.unwrap() {
        Inbound::Refused { error, .. } => assert!(matches!(
            error,
            Error::Limit(r) if r.limit == LimitKind::NewConnectionRate
        )),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(listener.stats().refused_by_limit, 1);
    assert_eq!(listener.stats().failed_handshakes, 0);
}

#[tokio::test]
async fn a_failed_dial_backs_off_the_next_one_locally() {
    let server = transport();
    let client = transport_with(
        ChannelConfig::default(),
        SharedLimiter::new(ConnectionLimits::default()),
    );
    let _listener = server.listen(&loopback()).await.unwrap();
    let addr = _listener.local_addr().clone();
    let wrong = Some(Keypair::generate().peer_id());
    assert!(matches!(
        guard("mismatch", client.dial(&addr, wrong)).await,
        Err(Error::PeerMismatch { .. })
    ));
    match guard("backoff", client.dial(&addr, Some(server.local_peer_id()))).await {
        Err(Error::Limit(r)) => assert_eq!(r.limit, LimitKind::Cooldown),
        other => panic!("expected a local cooldown, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_handshake_cap_ignores_new_attempts() {
    let server = transport_with(
        ChannelConfig::default(),
        limits(|l| l.max_handshakes_in_flight = 0),
    );
    let channel = ChannelConfig {
        handshake_timeout: std::time::Duration::from_secs(2),
        ..ChannelConfig::default()
    };
    let client = transport_with(channel, SharedLimiter::unlimited());
    let mut listener = server.listen(&loopback()).await.unwrap();
    let addr = listener.local_addr().clone();
    let (dial, report) = guard("dial", async {
        tokio::join!(client.dial(&addr, None), listener.accept())
    })
    .await;
    assert!(matches!(dial, Err(Error::Timeout { .. })), "{dial:?}");
    match report.unwrap() {
        Inbound::Refused { error, .. } => assert!(matches!(
            error.limit_rejection().map(|r| r.limit),
            Some(LimitKind::HandshakesInFlight)
        )),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
