//! The listener's raw accept: TCP only. TLS and the HTTP upgrade run later, lazily, on the
//! first read of the accepted stream (see [`crate::stream`]).
//!
//! That order is the point: the core's listener checks the inbound limits by source IP *after*
//! `accept` returns and before it starts the handshake. Returning right after the TCP accept
//! means a source over its rate or in its cooldown is dropped before it costs a TLS handshake,
//! an HTTP parse or a WebSocket upgrade; an admitted one runs TLS, upgrade and Noise handshake
//! together inside the core's handshake task, under its handshake timeout and in-flight cap.
//! A refused `ws://` source is answered with an HTTP 429 (see [`WsAcceptor`]'s `refusal`).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use bitcraps_transport_core::stream::{AcceptedStream, RawStream, RefusalTask, StreamAcceptor};
use bitcraps_transport_core::{LimitRejection, SourceKey, TransportAddress, WebSocketAddress};
use tokio::io::AsyncReadExt;

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
        let refusal = Arc::new(OnceLock::new());
        let upgrade = upgrade::accept(
            tcp,
            self.tls.clone(),
            self.path.clone(),
            self.config,
            refusal.clone(),
        );
        let (mut reader, writer) = lazy(upgrade);
        reader.refusal = Some(refusal);
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

    /// `ws://`: reads the request head (at most [`crate::MAX_REQUEST_HEAD`]) and answers
    /// `429 Too Many Requests` with `Retry-After` and the limit (`docs/protocol.md`, section
    /// 8). `wss://`: closed without a byte, as a refusal would first cost the TLS handshake
    /// that the limit is there to save.
    fn refusal(
        &self,
        stream: AcceptedStream<WsReader, WsWriter>,
        rejection: LimitRejection,
    ) -> Option<RefusalTask> {
        if self.tls.is_some() {
            return None;
        }
        let RawStream {
            mut reader, writer, ..
        } = stream.raw;
        reader.refusal.as_ref()?.set(rejection).ok()?;
        Some(Box::pin(async move {
            // The first read runs the upgrade, which answers the refusal and fails.
            let mut byte = [0u8; 1];
            let _ = reader.read(&mut byte).await;
            drop(writer);
        }))
    }
}
