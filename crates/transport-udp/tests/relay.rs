//! Replay and tampering on a live connection, through a UDP relay placed between the peers.

mod common;

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use bitcraps_transport_core::{
    Connection, ConnectionLimits, Listener, Transport, TransportAddress,
};
use bitcraps_transport_udp::UdpTransport;
use common::{guard, listen, transport};

enum Cmd {
    ReplayCaptured(oneshot::Sender<usize>),
    TamperNext(oneshot::Sender<()>),
}

/// A UDP relay between a client and `server` that records the client's DATA datagrams and
/// can replay them or flip a byte in the next one.
async fn relay(server: SocketAddr) -> (TransportAddress, mpsc::Sender<Cmd>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = TransportAddress::Udp(socket.local_addr().unwrap());
    let (tx, mut rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut client = None;
        let mut captured: Vec<Vec<u8>> = Vec::new();
        let mut tamper = false;
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::ReplayCaptured(done)) => {
                        for d in &captured {
                            socket.send_to(d, server).await.unwrap();
                        }
                        let _ = done.send(captured.len());
                    }
                    Some(Cmd::TamperNext(done)) => {
                        tamper = true;
                        let _ = done.send(());
                    }
                    None => return,
                },
                received = socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = received else { continue };
                    let d = &mut buf[..n];
                    if from == server {
                        if let Some(c) = client {
                            let _ = socket.send_to(d, c).await;
                        }
                        continue;
                    }
                    client = Some(from);
                    if d[0] == 0x05 {
                        if tamper {
                            d[n / 2] ^= 0x01;
                            tamper = false;
                        } else {
                            captured.push(d.to_vec());
                        }
                    }
                    let _ = socket.send_to(d, server).await;
                }
            }
        }
    });
    (addr, tx)
}

async fn via_relay() -> (
    UdpTransport,
    Connection,
    Connection,
    mpsc::Sender<Cmd>,
    Box<dyn Listener>,
) {
    let server = transport(ConnectionLimits::unlimited());
    let client = transport(ConnectionLimits::unlimited());
    let mut listener = listen(&server).await;
    let TransportAddress::Udp(server_addr) = listener.local_addr().clone() else {
        panic!()
    };
    let (relay_addr, cmd) = relay(server_addr).await;
    let conn = guard(client.dial(&relay_addr, Some(server.local_peer_id())))
        .await
        .unwrap();
    let accepted = guard(listener.accept_connection()).await.unwrap();
    (server, conn, accepted, cmd, listener)
}

#[tokio::test]
async fn a_replayed_datagram_is_not_delivered_twice() {
    let (server, conn, mut accepted, cmd, _listener) = via_relay().await;
    conn.send("bet 5".into()).await.unwrap();
    assert_eq!(
        guard(accepted.recv()).await.unwrap().as_deref(),
        Some(&b"bet 5"[..])
    );
    let (done, replayed) = oneshot::channel();
    cmd.send(Cmd::ReplayCaptured(done)).await.unwrap();
    assert_eq!(guard(replayed).await.unwrap(), 1);
    conn.send("after".into()).await.unwrap();
    assert_eq!(
        guard(accepted.recv()).await.unwrap().as_deref(),
        Some(&b"after"[..]),
        "the replay was not delivered"
    );
    assert_eq!(server.datagram_stats().dropped_replayed, 1);
    assert_eq!(accepted.stats().messages_received, 2);
}

#[tokio::test]
async fn a_tampered_datagram_is_rejected_and_the_connection_survives() {
    let (server, conn, mut accepted, cmd, _listener) = via_relay().await;
    let (done, ready) = oneshot::channel();
    cmd.send(Cmd::TamperNext(done)).await.unwrap();
    guard(ready).await.unwrap();
    conn.send("bet 500".into()).await.unwrap();
    conn.send("bet 5".into()).await.unwrap();
    assert_eq!(
        guard(accepted.recv()).await.unwrap().as_deref(),
        Some(&b"bet 5"[..])
    );
    assert_eq!(server.datagram_stats().dropped_unauthentic, 1);
}
