//! Helpers shared by the loopback test files.
#![allow(dead_code)]

use std::time::Duration;

use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{
    Connection, ConnectionLimits, Keypair, Listener, SharedLimiter, Transport,
};
use bitcraps_transport_udp::{UdpConfig, UdpTransport};

/// A guard against hangs only; nothing waits for it to pass.
pub(crate) const GUARD: Duration = Duration::from_secs(20);

pub(crate) async fn guard<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("timed out")
}

pub(crate) fn transport(limits: ConnectionLimits) -> UdpTransport {
    let config = UdpConfig {
        limits: limits.clone(),
        ..UdpConfig::default()
    };
    UdpTransport::with_limiter(
        LocalIdentity::new(Keypair::generate()),
        config,
        SharedLimiter::new(limits),
    )
}

pub(crate) async fn listen(t: &UdpTransport) -> Box<dyn Listener> {
    t.listen(&"udp://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

pub(crate) async fn pair() -> (
    UdpTransport,
    UdpTransport,
    Box<dyn Listener>,
    Connection,
    Connection,
) {
    let server = transport(ConnectionLimits::unlimited());
    let client = transport(ConnectionLimits::unlimited());
    let mut listener = listen(&server).await;
    let addr = listener.local_addr().clone();
    let conn = guard(client.dial(&addr, Some(server.local_peer_id())))
        .await
        .unwrap();
    let accepted = guard(listener.accept_connection()).await.unwrap();
    (server, client, listener, conn, accepted)
}
