//! Helpers shared by the integration tests: transports with unlimited or given limits, and
//! a listener plus an authenticated pair of connections on loopback.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use bitcraps_transport_core::{
    ChannelConfig, Connection, ConnectionLimits, Keypair, Listener, SharedLimiter, Transport,
    TransportAddress,
};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};

/// A guard against hangs only; tests wait on events, never on time.
pub const GUARD: Duration = Duration::from_secs(20);

pub fn loopback() -> TransportAddress {
    "quic://127.0.0.1:0".parse().unwrap()
}

pub fn config(channel: ChannelConfig) -> QuicConfig {
    QuicConfig {
        channel,
        limits: ConnectionLimits::unlimited(),
        ..QuicConfig::default()
    }
}

pub fn transport() -> QuicTransport {
    QuicTransport::with_limiter(
        Keypair::generate(),
        config(ChannelConfig::default()),
        SharedLimiter::unlimited(),
    )
    .unwrap()
}

pub fn transport_with(channel: ChannelConfig, limiter: SharedLimiter) -> QuicTransport {
    QuicTransport::with_limiter(Keypair::generate(), config(channel), limiter).unwrap()
}

pub async fn guard<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// Listens with `server`, dials it from `client` expecting the server's id, and returns the
/// listener, the dialer's connection and the accepted one.
pub async fn pair(
    server: &QuicTransport,
    client: &QuicTransport,
) -> (Box<dyn Listener>, Connection, Connection) {
    let mut listener = server.listen(&loopback()).await.unwrap();
    let addr = listener.local_addr().clone();
    let expect = Some(server.local_peer_id());
    let (dialed, accepted) = guard("pair", async {
        tokio::join!(client.dial(&addr, expect), listener.accept_connection())
    })
    .await;
    (listener, dialed.unwrap(), accepted.unwrap())
}

/// Relay mode: forward every datagram.
pub const FORWARD: u8 = 0;
/// Relay mode: flip the last byte (inside the AEAD tag) of client-to-server datagrams.
pub const TAMPER: u8 = 1;
/// Relay mode: drop every datagram, both ways.
pub const DROP: u8 = 2;

/// A UDP relay between one client and `server`, in `mode`; reports each datagram it
/// tampered with or dropped on `altered`.
pub async fn relay(
    server: std::net::SocketAddr,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    altered: tokio::sync::mpsc::Sender<()>,
) -> std::net::SocketAddr {
    use std::sync::atomic::Ordering;
    use tokio::net::UdpSocket;
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let mut client: Option<std::net::SocketAddr> = None;
        let (mut a, mut b) = (vec![0u8; 65536], vec![0u8; 65536]);
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { return };
                    client = Some(from);
                    match mode.load(Ordering::SeqCst) {
                        FORWARD => {}
                        TAMPER => {
                            a[n - 1] ^= 0x5a;
                            let _ = altered.try_send(());
                        }
                        _ => {
                            let _ = altered.try_send(());
                            continue;
                        }
                    }
                    let _ = back.send_to(&a[..n], server).await;
                }
                r = back.recv_from(&mut b) => {
                    let Ok((n, _)) = r else { return };
                    if mode.load(Ordering::SeqCst) == DROP {
                        let _ = altered.try_send(());
                        continue;
                    }
                    if let Some(c) = client {
                        let _ = front.send_to(&b[..n], c).await;
                    }
                }
            }
        }
    });
    addr
}
