//! The TCP backend's harness: loopback listeners on port 0, and raw sockets bound to
//! `127.0.0.{source + 1}` so each raw source is a distinct IP for the listener's limiter (Linux
//! routes all of `127.0.0.0/8` over `lo`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter, Transport, TransportAddress};
use bitcraps_transport_tcp::TcpTransport;
use tokio::net::TcpSocket;

use crate::{Harness, RawIo};

/// Runs the suite on [`TcpTransport`].
#[derive(Debug, Default)]
pub struct TcpHarness;

/// A fresh TCP harness.
pub fn harness() -> Arc<dyn Harness> {
    Arc::new(TcpHarness)
}

#[async_trait]
impl Harness for TcpHarness {
    fn refuses_explicitly(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "tcp"
    }

    fn transport(
        &self,
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Arc<dyn Transport> {
        Arc::new(TcpTransport::with_limiter(
            LocalIdentity::new(keypair),
            channel,
            limiter,
        ))
    }

    fn listen_addr(&self) -> TransportAddress {
        TransportAddress::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    async fn connect_raw(
        &self,
        addr: &TransportAddress,
        source: u8,
    ) -> Option<io::Result<Box<dyn RawIo>>> {
        let TransportAddress::Tcp(target) = addr else {
            return Some(Err(io::Error::other(format!("not a tcp address: {addr}"))));
        };
        let Some(last) = source.checked_add(1) else {
            return Some(Err(io::Error::other("tcp raw sources go up to 254")));
        };
        let connect = async {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), 0)))?;
            let stream = socket.connect(*target).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Box<dyn RawIo>)
        };
        Some(connect.await)
    }
}
