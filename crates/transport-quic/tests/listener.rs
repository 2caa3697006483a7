//! The listener: closing frees the port, accepted connections outlive it, and garbage or
//! tampered datagrams deliver nothing while everyone else is served.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use bitcraps_transport_core::{Bytes, Error, Transport, TransportAddress};
use common::{guard, loopback, pair, relay, transport, FORWARD, TAMPER};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

fn socket_addr(addr: &TransportAddress) -> SocketAddr {
    addr.socket_addr().unwrap()
}

#[tokio::test]
async fn closing_the_listener_frees_the_port() {
    let server = transport();
    let mut listener = server.listen(&loopback()).await.unwrap();
    let addr = socket_addr(listener.local_addr());
    guard("close", listener.close()).await;
    assert!(matches!(
        guard("accept", listener.accept()).await,
        Err(Error::ListenerClosed)
    ));
    std::net::UdpSocket::bind(addr).expect("the port is free after close");
    // And a new listener can take it.
    let again = server
        .listen(&TransportAddress::Quic(addr))
        .await
        .expect("listen again on the same port");
    assert_eq!(socket_addr(again.local_addr()), addr);
}

#[tokio::test]
async fn accepted_connections_outlive_the_listener() {
    let server = transport();
    let client = transport();
    let (mut listener, dialed, mut accepted) = pair(&server, &client).await;
    guard("close", listener.close()).await;
    dialed.send("still playing".into()).await.unwrap();
    assert_eq!(
        guard("recv", accepted.recv()).await.unwrap().as_deref(),
        Some(&b"still playing"[..])
    );
}

#[tokio::test]
async fn garbage_datagrams_are_dropped_and_the_listener_keeps_serving() {
    let server = transport();
    let client = transport();
    let mut listener = server.listen(&loopback()).await.unwrap();
    let addr = listener.local_addr().clone();
    let target = socket_addr(&addr);
    let junk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..300usize {
        let len = [1, 20, 1200, 1350, 64, 1500][i % 6];
        let mut datagram = vec![0u8; len];
        for b in &mut datagram {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        if i % 3 == 0 {
            // A QUIC v1 long-header Initial with garbage inside.
            datagram[0] = 0xc3;
            if len >= 5 {
                datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
            }
        }
        junk.send_to(&datagram, target).await.unwrap();
    }
    let expect = Some(server.local_peer_id());
    let (dialed, accepted) = guard("dial after garbage", async {
        tokio::join!(client.dial(&addr, expect), listener.accept_connection())
    })
    .await;
    let (dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    dialed.send("fair dice".into()).await.unwrap();
    assert_eq!(
        guard("recv", accepted.recv()).await.unwrap().as_deref(),
        Some(&b"fair dice"[..])
    );
}

#[tokio::test]
async fn tampered_packets_deliver_nothing_and_retransmission_recovers() {
    let server = transport();
    let client = transport();
    let mut listener = server.listen(&loopback()).await.unwrap();
    let mode = Arc::new(AtomicU8::new(FORWARD));
    let (tx, mut tampered) = mpsc::channel(1024);
    let relay = relay(socket_addr(listener.local_addr()), mode.clone(), tx).await;
    let expect = Some(server.local_peer_id());
    let relay = TransportAddress::Quic(relay);
    let (dialed, accepted) = guard("dial through relay", async {
        tokio::join!(client.dial(&relay, expect), listener.accept_connection())
    })
    .await;
    let (dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());

    mode.store(TAMPER, Ordering::SeqCst);
    let message = Bytes::from(vec![0xab; 3000]);
    dialed.send(message.clone()).await.unwrap();
    // Wait until the message's datagrams and then loss-recovery probes (sent because the
    // server acknowledged nothing) went through tampered.
    for _ in 0..8 {
        guard("tampered datagram", tampered.recv()).await.unwrap();
    }
    assert_eq!(
        accepted.stats().messages_received,
        0,
        "a tampered packet must not deliver anything"
    );
    mode.store(FORWARD, Ordering::SeqCst);
    let got = guard("recovered", accepted.recv()).await.unwrap().unwrap();
    assert_eq!(got, message, "the retransmitted message arrives intact");
    assert_eq!(accepted.stats().messages_received, 1);
}
