//! Shared helpers of the integration tests: configs, a shared self-signed certificate,
//! connected pairs, raw sockets from chosen loopback sources.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bitcraps_transport_core::{
    Connection, ConnectionLimits, Keypair, Listener, Transport, TransportAddress,
};
use bitcraps_transport_ws::{WebSocketTransport, WsConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpSocket, TcpStream};

/// Guards against hangs only; no test waits for it.
pub const GUARD: Duration = Duration::from_secs(30);

pub async fn guarded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("test hung")
}

/// Server and client TLS configs sharing one self-signed certificate (localhost, 127.0.0.1).
pub fn tls() -> &'static (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    static TLS: OnceLock<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> = OnceLock::new();
    TLS.get_or_init(|| {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let der = CertificateDer::from(cert.cert.der().to_vec());
        let key = PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
        (
            WsConfig::tls_server_config(vec![der.clone()], key).unwrap(),
            WsConfig::tls_client_config([der]).unwrap(),
        )
    })
}

/// Unlimited limits, default channel, TLS both ways when `secure`.
pub fn config(secure: bool) -> WsConfig {
    let mut config = WsConfig {
        limits: ConnectionLimits::unlimited(),
        ..WsConfig::default()
    };
    if secure {
        let (server, client) = tls();
        config.tls_server = Some(server.clone());
        config.tls_client = Some(client.clone());
    }
    config
}

pub fn transport(config: WsConfig) -> WebSocketTransport {
    WebSocketTransport::with_config(Keypair::generate(), config)
}

pub fn listen_url(secure: bool) -> TransportAddress {
    let scheme = if secure { "wss" } else { "ws" };
    format!("{scheme}://127.0.0.1:0/bitcraps").parse().unwrap()
}

/// Dials `listener` from `client` (expecting `server`'s id) and accepts: (dialed, accepted).
pub async fn connect(
    client: &WebSocketTransport,
    server: &WebSocketTransport,
    listener: &mut Box<dyn Listener>,
) -> (Connection, Connection) {
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        client.dial(&addr, Some(server.local_peer_id())),
        listener.accept_connection()
    );
    (dialed.expect("dial"), accepted.expect("accept"))
}

/// A raw TCP connection to `addr` from 127.0.0.`source`.
pub async fn raw_tcp(addr: SocketAddr, source: u8) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, source], 0)))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

pub fn socket_addr(listener: &dyn Listener) -> SocketAddr {
    listener.local_addr().socket_addr().unwrap()
}
