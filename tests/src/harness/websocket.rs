//! The WebSocket backend in the suite, twice: `websocket` (`ws://`) and `wss` (`wss://`, one
//! self-signed certificate for the whole test process, trusted by every client). Raw access is
//! an upgraded WebSocket byte stream from `127.0.0.{source + 1}` with no Noise handshake, so
//! hostile bytes reach the secure channel exactly as raw TCP bytes do on the TCP backend. (The
//! backend's own tests cover hostile HTTP before the upgrade.)

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{
    ChannelConfig, Error, Keypair, SharedLimiter, Transport, TransportAddress,
};
use bitcraps_transport_ws::{WebSocketTransport, WsConfig, WsReader, WsWriter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Harness, RawIo};

type TlsPair = (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>);

fn shared_tls() -> &'static TlsPair {
    static TLS: OnceLock<TlsPair> = OnceLock::new();
    TLS.get_or_init(|| {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("self-signed certificate");
        let der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).expect("key");
        (
            WsConfig::tls_server_config(vec![der.clone()], key).expect("server config"),
            WsConfig::tls_client_config([der]).expect("client config"),
        )
    })
}

/// The `ws://` harness.
pub fn plain() -> Arc<dyn Harness> {
    Arc::new(WebSocketHarness { secure: false })
}

/// The `wss://` harness.
pub fn secure() -> Arc<dyn Harness> {
    Arc::new(WebSocketHarness { secure: true })
}

struct WebSocketHarness {
    secure: bool,
}

impl WebSocketHarness {
    fn make(
        &self,
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> WebSocketTransport {
        let mut config = WsConfig {
            channel,
            ..WsConfig::default()
        };
        if self.secure {
            let (server, client) = shared_tls();
            config.tls_server = Some(server.clone());
            config.tls_client = Some(client.clone());
        }
        WebSocketTransport::with_limiter(LocalIdentity::new(keypair), config, limiter)
    }
}

/// The two halves of an upgraded stream as one raw byte connection.
struct Joined {
    reader: WsReader,
    writer: WsWriter,
}

impl AsyncRead for Joined {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Joined {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

#[async_trait]
impl Harness for WebSocketHarness {
    fn refuses_explicitly(&self) -> bool {
        !self.secure
    }

    fn name(&self) -> &'static str {
        if self.secure {
            "wss"
        } else {
            "websocket"
        }
    }

    fn transport(
        &self,
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Arc<dyn Transport> {
        Arc::new(self.make(keypair, channel, limiter))
    }

    fn listen_addr(&self) -> TransportAddress {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!("{scheme}://127.0.0.1:0/bitcraps")
            .parse()
            .expect("valid address")
    }

    async fn connect_raw(
        &self,
        addr: &TransportAddress,
        source: u8,
    ) -> Option<io::Result<Box<dyn RawIo>>> {
        let Some(last) = source.checked_add(1) else {
            return Some(Err(io::Error::other("raw sources go up to 254")));
        };
        let client = self.make(
            Keypair::generate(),
            ChannelConfig::default(),
            SharedLimiter::unlimited(),
        );
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        Some(match client.connect_stream(addr, Some(from)).await {
            Ok((reader, writer, _)) => Ok(Box::new(Joined { reader, writer }) as Box<dyn RawIo>),
            // The TCP connection was made but the listener hung up before the upgrade (its
            // limiter refuses a source right after the TCP accept): as on TCP, the raw
            // connection exists and is closed.
            Err(Error::Io { context, .. }) if context != "websocket connect" => {
                Ok(Box::new(HungUp) as Box<dyn RawIo>)
            }
            // `ws://` answers such a source with a 429 naming the limit instead: the raw
            // connection existed, and the listener closed it after the answer.
            Err(Error::RemoteLimit(_)) => Ok(Box::new(HungUp) as Box<dyn RawIo>),
            Err(e) => Err(io::Error::other(e.to_string())),
        })
    }
}

/// A raw connection the listener already closed: reads end, writes fail.
struct HungUp;

impl AsyncRead for HungUp {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for HungUp {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
