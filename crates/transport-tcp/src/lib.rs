//! # bitcraps-transport-tcp
//!
//! TCP on tokio, secured by the core's Noise channel: every connection proves the remote's
//! [`PeerId`] before any application byte is accepted. `TCP_NODELAY` is set on every socket;
//! writes are batched by the core's connection driver, so small messages do not cost a syscall
//! each. Inbound connections are checked against the limits by source IP before the handshake
//! costs any CPU; a refused dialer gets the 10-byte refusal frame naming the limit and when to
//! retry, and its dial fails with [`Error::RemoteLimit`].
//!
//! ```no_run
//! # async fn run() -> bitcraps_transport_core::Result<()> {
//! use bitcraps_transport_core::{Keypair, Transport, Listener};
//! use bitcraps_transport_tcp::TcpTransport;
//!
//! let server = TcpTransport::new(Keypair::generate());
//! let mut listener = server.listen(&"tcp://127.0.0.1:0".parse()?).await?;
//! let addr = listener.local_addr().clone();
//! let client = TcpTransport::new(Keypair::generate());
//! let conn = client.dial(&addr, Some(server.local_peer_id())).await?;
//! let mut accepted = listener.accept_connection().await?;
//! conn.send("bet 5 on 7".into()).await?;
//! assert_eq!(accepted.recv().await?.as_deref(), Some(&b"bet 5 on 7"[..]));
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use bitcraps_transport_core::refusal::send_refusal;
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::stream::{
    spawn_stream_listener, AcceptedStream, RawStream, RefusalTask, StreamAcceptor, StreamContext,
};
use bitcraps_transport_core::{
    Capabilities, ChannelConfig, Connection, ConnectionLimits, Error, Keypair, LimitRejection,
    Listener, PeerId, Result, SharedLimiter, SourceKey, Transport, TransportAddress, TransportKind,
};

/// Settings of a [`TcpTransport`].
#[derive(Debug, Clone, Default)]
pub struct TcpConfig {
    /// Secure-channel and queue settings.
    pub channel: ChannelConfig,
    /// Connection limits (ignored when a shared limiter is given).
    pub limits: ConnectionLimits,
}

/// The TCP backend.
#[derive(Debug, Clone)]
pub struct TcpTransport {
    ctx: StreamContext,
}

impl TcpTransport {
    /// A TCP transport with default settings and limits.
    pub fn new(keypair: Keypair) -> Self {
        Self::with_config(keypair, TcpConfig::default())
    }

    /// A TCP transport with the given settings and its own limiter.
    pub fn with_config(keypair: Keypair, config: TcpConfig) -> Self {
        let limiter = SharedLimiter::new(config.limits);
        Self::with_limiter(LocalIdentity::new(keypair), config.channel, limiter)
    }

    /// A TCP transport sharing `identity` and `limiter` with other transports.
    pub fn with_limiter(
        identity: Arc<LocalIdentity>,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Self {
        Self {
            ctx: StreamContext {
                identity,
                config: Arc::new(channel),
                limiter,
                kind: TransportKind::Tcp,
            },
        }
    }

    /// The limiter this transport consults.
    pub fn limiter(&self) -> &SharedLimiter {
        &self.ctx.limiter
    }

    fn socket_addr(&self, addr: &TransportAddress) -> Result<SocketAddr> {
        match addr {
            TransportAddress::Tcp(a) => Ok(*a),
            other => Err(Error::Unsupported(other.clone())),
        }
    }
}

struct TcpAcceptor {
    listener: TcpListener,
}

fn split(stream: TcpStream) -> io::Result<(OwnedReadHalf, OwnedWriteHalf, SocketAddr, SocketAddr)> {
    stream.set_nodelay(true)?;
    let local = stream.local_addr()?;
    let remote = stream.peer_addr()?;
    let (r, w) = stream.into_split();
    Ok((r, w, local, remote))
}

impl StreamAcceptor for TcpAcceptor {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    async fn accept(&mut self) -> io::Result<AcceptedStream<OwnedReadHalf, OwnedWriteHalf>> {
        let (stream, _) = self.listener.accept().await?;
        let (reader, writer, local, remote) = split(stream)?;
        Ok(AcceptedStream {
            raw: RawStream {
                reader,
                writer,
                local_addr: TransportAddress::Tcp(local),
                remote_addr: TransportAddress::Tcp(remote),
            },
            source: SourceKey::from(remote),
        })
    }

    /// The 10-byte refusal frame of `docs/protocol.md` (section 3), then FIN.
    fn refusal(
        &self,
        stream: AcceptedStream<OwnedReadHalf, OwnedWriteHalf>,
        rejection: LimitRejection,
    ) -> Option<RefusalTask> {
        let RawStream { reader, writer, .. } = stream.raw;
        Some(Box::pin(send_refusal(reader, writer, rejection)))
    }
}

#[async_trait]
impl Transport for TcpTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Tcp
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::reliable(self.ctx.config.max_message_size)
    }

    fn local_peer_id(&self) -> PeerId {
        self.ctx.identity.peer_id()
    }

    fn supports(&self, addr: &TransportAddress) -> bool {
        matches!(addr, TransportAddress::Tcp(_))
    }

    async fn listen(&self, addr: &TransportAddress) -> Result<Box<dyn Listener>> {
        let socket_addr = self.socket_addr(addr)?;
        let listener = TcpListener::bind(socket_addr)
            .await
            .map_err(|e| Error::io("tcp bind", e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("tcp local address", e))?;
        tracing::info!(address = %local, "tcp listening");
        Ok(Box::new(spawn_stream_listener(
            TcpAcceptor { listener },
            TransportAddress::Tcp(local),
            self.ctx.clone(),
        )))
    }

    async fn dial(&self, addr: &TransportAddress, expect: Option<PeerId>) -> Result<Connection> {
        let socket_addr = self.socket_addr(addr)?;
        self.ctx
            .dial(addr, expect, || async move {
                let stream = TcpStream::connect(socket_addr)
                    .await
                    .map_err(|e| Error::io("tcp connect", e))?;
                let (reader, writer, local, remote) =
                    split(stream).map_err(|e| Error::io("tcp socket setup", e))?;
                Ok(RawStream {
                    reader,
                    writer,
                    local_addr: TransportAddress::Tcp(local),
                    remote_addr: TransportAddress::Tcp(remote),
                })
            })
            .await
    }
}
