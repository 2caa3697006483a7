//! The listener's raw accept: TCP only. TLS and the HTTP upgrade run later, lazily, on the
//! first read of the accepted stream (see [`crate::stream`]).
//!
//! That order is the point: the core's listener checks the inbound limits by source IP *after*
//! `accept` returns and before it starts the handshake. Returning right after the TCP accept
//! means a source over its rate or in its cooldown is dropped before it costs a TLS handshake,
//! an HTTP parse or a WebSocket upgrade; an admitted one runs TLS, upgrade and Noise handshake
//! together inside the core's handshake task, under its handshake timeout and in-flight cap.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use bitcraps_transport_core::stream::{AcceptedStream, RawStream, StreamAcceptor};
use bitcraps_transport_core::{SourceKey, TransportAddress, WebSocketAddress};

use crate::stream::{lazy, WsReader, WsWriter};
use crate::upgrade;

/// Accepts TCP connections for one `ws://` or `wss://` listen address.
pub(crate) struct WsAcceptor {
    pub(crate) listener: TcpListener,
    /// The bound address (with the real port), path included.
    pub(crate) local: WebSocketAddress,
    pub(crate) path: Arc<str>,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) config: WebSocketConfig,
}

/// The WebSocket address of `socket` on a listener/dialer with these scheme and path.
pub(crate) fn ws_address(socket: SocketAddr, secure: bool, path: &str) -> WebSocketAddress {
    WebSocketAddress {
        secure,
        host: socket.ip().to_string(),
        port: socket.port(),
        path: path.to_string(),
    }
}

impl StreamAcceptor for WsAcceptor {
    type Reader = WsReader;
    type Writer = WsWriter;

    async fn accept(&mut self) -> io::Result<AcceptedStream<WsReader, WsWriter>> {
        let (tcp, remote) = self.listener.accept().await?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%remote, error = %e, "set_nodelay failed");
        }
        let local = match tcp.local_addr() {
            Ok(a) => ws_address(a, self.local.secure, &self.local.path),
            Err(_) => self.local.clone(),
        };
        let upgrade = upgrade::accept(tcp, self.tls.clone(), self.path.clone(), self.config);
        let (reader, writer) = lazy(upgrade);
        Ok(AcceptedStream {
            raw: RawStream {
                reader,
                writer,
                local_addr: TransportAddress::WebSocket(local),
                remote_addr: TransportAddress::WebSocket(ws_address(
                    remote,
                    self.local.secure,
                    &self.local.path,
                )),
            },
            source: SourceKey::from(remote),
        })
    }
}
