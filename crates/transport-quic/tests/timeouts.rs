//! Timeouts, under tokio's paused clock (no real waiting): a dial to a silent address fails
//! after the handshake timeout; a connection whose remote goes silent ends by the idle timeout
//! while keep-alives hold a quiet but healthy connection open.

mod common;

use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{ChannelConfig, Error, SharedLimiter, Transport, TransportAddress};
use common::{guard, loopback, relay, transport, transport_with, DROP, FORWARD};
use tokio::sync::mpsc;

#[tokio::test(start_paused = true)]
async fn a_dial_to_a_silent_address_times_out() {
    let channel = ChannelConfig {
        handshake_timeout: Duration::from_secs(3),
        ..ChannelConfig::default()
    };
    let client = transport_with(channel, SharedLimiter::unlimited());
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = TransportAddress::Quic(silent.local_addr().unwrap());
    match guard("dial", client.dial(&addr, None)).await {
        Err(Error::Timeout { after, .. }) => assert_eq!(after, Duration::from_secs(3)),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn keep_alive_holds_a_quiet_connection_and_idle_timeout_ends_a_silent_one() {
    let server = transport();
    let client = transport();
    let mut listener = server.listen(&loopback()).await.unwrap();
    let mode = Arc::new(AtomicU8::new(FORWARD));
    let (tx, mut dropped) = mpsc::channel(1024);
    let relay = relay(
        listener.local_addr().socket_addr().unwrap(),
        mode.clone(),
        tx,
    )
    .await;
    let relay = TransportAddress::Quic(relay);
    let expect = Some(server.local_peer_id());
    let (dialed, accepted) = guard("dial", async {
        tokio::join!(client.dial(&relay, expect), listener.accept_connection())
    })
    .await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());

    // Quiet for twice the idle timeout: keep-alives keep it open.
    tokio::time::sleep(Duration::from_secs(60)).await;
    dialed.send("still there?".into()).await.unwrap();
    assert_eq!(
        guard("recv", accepted.recv()).await.unwrap().as_deref(),
        Some(&b"still there?"[..])
    );

    // Now the network drops everything: both sides give up after the idle timeout.
    mode.store(DROP, std::sync::atomic::Ordering::SeqCst);
    // (A longer guard: the clock is virtual and the idle timeout is 30 s.)
    let (a, b) = tokio::time::timeout(Duration::from_secs(300), async {
        tokio::join!(dialed.recv(), accepted.recv())
    })
    .await
    .expect("idle timeout never fired");
    assert!(dropped.try_recv().is_ok(), "the relay dropped datagrams");
    for end in [a, b] {
        match end {
            Err(Error::LinkLost(why)) => assert!(why.contains("idle"), "{why}"),
            other => panic!("expected LinkLost, got {other:?}"),
        }
    }
}
