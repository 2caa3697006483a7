//! [`Socket`]: the byte stream under the WebSocket, plain TCP (`ws://`) or TLS over TCP
//! (`wss://`), and the TLS handshakes with our own rustls configs.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

use crate::WsError;

/// TCP, or TLS over TCP (boxed: a TLS session is a few KiB).
#[derive(Debug)]
pub(crate) enum Socket {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`, either side.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Socket {
    /// Server side: runs the TLS handshake when `tls` is given.
    pub(crate) async fn accept(
        tcp: TcpStream,
        tls: Option<&Arc<rustls::ServerConfig>>,
    ) -> Result<Self, WsError> {
        match tls {
            None => Ok(Self::Plain(tcp)),
            Some(config) => {
                let stream = TlsAcceptor::from(config.clone())
                    .accept(tcp)
                    .await
                    .map_err(|e| WsError::Tls(e.to_string()))?;
                Ok(Self::Tls(Box::new(stream.into())))
            }
        }
    }

    /// Client side: runs the TLS handshake for `host` when `tls` is given.
    pub(crate) async fn connect(
        tcp: TcpStream,
        host: &str,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Self, WsError> {
        match tls {
            None => Ok(Self::Plain(tcp)),
            Some(config) => {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| WsError::Tls(format!("server name {host}: {e}")))?;
                let stream = TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| WsError::Tls(e.to_string()))?;
                Ok(Self::Tls(Box::new(stream.into())))
            }
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
