//! # bitcraps-transport-ws
//!
//! WebSocket backend (`ws://` and `wss://`) on tokio-tungstenite, with the core's Noise
//! channel running *inside* the WebSocket: every connection proves the remote's [`PeerId`]
//! end to end, even through a proxy that terminates TLS. TLS (wss) is for traversal and
//! privacy on the way; identity never comes from a certificate.
//!
//! Wire mapping (see also `docs/protocol.md`):
//!
//! - HTTP/1.1 upgrade on the address's path (e.g. `/bitcraps`), subprotocol
//!   [`SUBPROTOCOL`] (`bitcraps.v1`) offered by the dialer and required by the listener.
//! - After the upgrade, the two directions are a byte stream carried in **binary** messages:
//!   the stream is exactly what TCP would carry (the Noise handshake frames, then
//!   length-prefixed records), cut at arbitrary points; message boundaries mean nothing.
//!   Our writers send each batch of records as binary messages of at most [`WRITE_CHUNK`]
//!   (64 KiB); receivers accept messages of up to [`MAX_WS_MESSAGE`] (1 MiB).
//! - Text messages are a protocol violation (close 1003); pings are answered; the Noise
//!   channel's close record ends a connection, and each side follows its own close record
//!   with a WebSocket close frame (1000).
//!
//! Inbound connections are checked against the limits by source IP after the TCP accept and
//! before TLS, the HTTP upgrade or the Noise handshake cost any CPU: the listener's raw
//! accept returns right after the TCP accept, and TLS plus the upgrade run lazily on the
//! stream's first read, inside the core's handshake task and timeout.
//!
//! ```no_run
//! # async fn run() -> bitcraps_transport_core::Result<()> {
//! use bitcraps_transport_core::{Keypair, Transport, Listener};
//! use bitcraps_transport_ws::WebSocketTransport;
//!
//! let server = WebSocketTransport::new(Keypair::generate());
//! let mut listener = server.listen(&"ws://127.0.0.1:0/bitcraps".parse()?).await?;
//! let addr = listener.local_addr().clone();
//! let client = WebSocketTransport::new(Keypair::generate());
//! let conn = client.dial(&addr, Some(server.local_peer_id())).await?;
//! let mut accepted = listener.accept_connection().await?;
//! conn.send("bet 5 on 7".into()).await?;
//! assert_eq!(accepted.recv().await?.as_deref(), Some(&b"bet 5 on 7"[..]));
//! # Ok(()) }
//! ```

mod config;
mod error;
mod listener;
mod socket;
mod stream;
mod upgrade;

pub use config::{WsConfig, MAX_REQUEST_HEAD, MAX_WS_MESSAGE, SUBPROTOCOL, WRITE_CHUNK};
pub use error::{ws_error, WsError};
pub use stream::{byte_stream, WsReader, WsWriter};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::stream::{spawn_stream_listener, RawStream, StreamContext};
use bitcraps_transport_core::{
    Capabilities, Connection, Error, Keypair, Listener, PeerId, Result, SharedLimiter, Transport,
    TransportAddress, TransportKind, WebSocketAddress,
};

use crate::listener::{ws_address, WsAcceptor};
use crate::socket::Socket;

/// The WebSocket backend.
#[derive(Debug, Clone)]
pub struct WebSocketTransport {
    ctx: StreamContext,
    tls_server: Option<Arc<rustls::ServerConfig>>,
    tls_client: Option<Arc<rustls::ClientConfig>>,
    ws_config: WebSocketConfig,
}

impl WebSocketTransport {
    /// A `ws://` transport with default settings and limits (no TLS configs: `wss://` is
    /// unsupported).
    pub fn new(keypair: Keypair) -> Self {
        Self::with_config(keypair, WsConfig::default())
    }

    /// A transport with the given settings and its own limiter.
    pub fn with_config(keypair: Keypair, config: WsConfig) -> Self {
        let limiter = SharedLimiter::new(config.limits.clone());
        Self::with_limiter(LocalIdentity::new(keypair), config, limiter)
    }

    /// A transport sharing `identity` and `limiter` with other transports (`config.limits` is
    /// ignored).
    pub fn with_limiter(
        identity: Arc<LocalIdentity>,
        config: WsConfig,
        limiter: SharedLimiter,
    ) -> Self {
        let ws_config = config.websocket_config();
        Self {
            ctx: StreamContext {
                identity,
                config: Arc::new(config.channel),
                limiter,
                kind: TransportKind::WebSocket,
            },
            tls_server: config.tls_server,
            tls_client: config.tls_client,
            ws_config,
        }
    }

    /// The limiter this transport consults.
    pub fn limiter(&self) -> &SharedLimiter {
        &self.ctx.limiter
    }

    fn ws_addr<'a>(&self, addr: &'a TransportAddress) -> Result<&'a WebSocketAddress> {
        match addr {
            TransportAddress::WebSocket(a) if self.supports(addr) => Ok(a),
            other => Err(Error::Unsupported(other.clone())),
        }
    }

    /// Connects to `addr` (from `local_ip` if given), runs TLS for `wss://` and the HTTP
    /// upgrade with [`SUBPROTOCOL`], and returns the byte-stream halves *without* the Noise
    /// handshake, with this side's address. For tests and tools that speak the secure channel
    /// themselves (e.g. a conformance suite writing garbage inside the WebSocket); `dial` is
    /// this plus the handshake. No limits or timeout apply here.
    pub async fn connect_stream(
        &self,
        addr: &TransportAddress,
        local_ip: Option<IpAddr>,
    ) -> Result<(WsReader, WsWriter, WebSocketAddress)> {
        let ws = self.ws_addr(addr)?;
        let tls = match (ws.secure, &self.tls_client) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls),
            (true, None) => return Err(Error::Unsupported(addr.clone())),
        };
        let tcp = match local_ip {
            None => TcpStream::connect((ws.host.as_str(), ws.port)).await,
            Some(ip) => connect_from(ip, ws).await,
        }
        .map_err(|e| Error::io("websocket connect", e))?;
        let _ = tcp.set_nodelay(true);
        let local = tcp
            .local_addr()
            .map_err(|e| Error::io("websocket socket setup", e))?;
        let socket = Socket::connect(tcp, &ws.host, tls)
            .await
            .map_err(|e| ws_io("websocket tls", e))?;
        let stream = upgrade::connect(socket, &ws.to_string(), self.ws_config)
            .await
            .map_err(|e| match e {
                WsError::Refused(rejection) => Error::RemoteLimit(rejection),
                e => ws_io("websocket upgrade", e),
            })?;
        let (reader, writer) = byte_stream(stream);
        Ok((reader, writer, ws_address(local, ws.secure, &ws.path)))
    }
}

/// A TCP connection to `ws` from a socket bound to `ip` (port 0).
async fn connect_from(ip: IpAddr, ws: &WebSocketAddress) -> std::io::Result<TcpStream> {
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    let target = tokio::net::lookup_host((ws.host.as_str(), ws.port))
        .await?
        .find(|a| a.is_ipv4() == ip.is_ipv4())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    socket.connect(target).await
}

fn ws_io(context: &'static str, e: WsError) -> Error {
    Error::io(context, e.into())
}

#[async_trait]
impl Transport for WebSocketTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::WebSocket
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::reliable(self.ctx.config.max_message_size)
    }

    fn local_peer_id(&self) -> PeerId {
        self.ctx.identity.peer_id()
    }

    /// Every `ws://` address; `wss://` when a TLS config is present (a server config to listen,
    /// a client config to dial: `listen`/`dial` refuse the direction whose config is missing
    /// with [`Error::Unsupported`]).
    fn supports(&self, addr: &TransportAddress) -> bool {
        match addr {
            TransportAddress::WebSocket(a) => {
                !a.secure || self.tls_server.is_some() || self.tls_client.is_some()
            }
            _ => false,
        }
    }

    async fn listen(&self, addr: &TransportAddress) -> Result<Box<dyn Listener>> {
        let ws = self.ws_addr(addr)?;
        let tls = match (ws.secure, &self.tls_server) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls.clone()),
            (true, None) => return Err(Error::Unsupported(addr.clone())),
        };
        let listener = TcpListener::bind((ws.host.as_str(), ws.port))
            .await
            .map_err(|e| Error::io("websocket bind", e))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::io("websocket local address", e))?;
        let local = ws_address(bound, ws.secure, &ws.path);
        tracing::info!(address = %local, "websocket listening");
        let acceptor = WsAcceptor {
            listener,
            path: Arc::from(ws.path.as_str()),
            local: local.clone(),
            tls,
            config: self.ws_config,
        };
        Ok(Box::new(spawn_stream_listener(
            acceptor,
            TransportAddress::WebSocket(local),
            self.ctx.clone(),
        )))
    }

    async fn dial(&self, addr: &TransportAddress, expect: Option<PeerId>) -> Result<Connection> {
        // Unsupported before any limit or backoff is touched.
        if self.ws_addr(addr)?.secure && self.tls_client.is_none() {
            return Err(Error::Unsupported(addr.clone()));
        }
        self.ctx
            .dial(addr, expect, || async move {
                let (reader, writer, local) = self.connect_stream(addr, None).await?;
                Ok(RawStream {
                    reader,
                    writer,
                    local_addr: TransportAddress::WebSocket(local),
                    remote_addr: addr.clone(),
                })
            })
            .await
    }
}
