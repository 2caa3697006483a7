//! The workloads through our transports: one authenticated connection per measurement, built
//! with the same settings the node uses (limits off so a benchmark is never refused).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;

use bitcraps_transport_core::{
    ChannelConfig, Connection, ConnectionLimits, Keypair, Listener, Transport, TransportAddress,
};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};
use bitcraps_transport_udp::{UdpConfig, UdpTransport, DEFAULT_MAX_PAYLOAD, MAX_PAYLOAD_LIMIT};
use bitcraps_transport_ws::{WebSocketTransport, WsConfig};

/// Channel settings that admit `size`-byte messages.
fn channel(size: usize) -> ChannelConfig {
    ChannelConfig {
        max_message_size: size.max(1024 * 1024),
        ..ChannelConfig::default()
    }
}

fn transport(backend: &str, size: usize, net: &MemoryNetwork) -> Result<Arc<dyn Transport>> {
    let key = Keypair::generate();
    let limits = ConnectionLimits::unlimited();
    Ok(match backend {
        "tcp" => Arc::new(TcpTransport::with_config(
            key,
            TcpConfig {
                channel: channel(size),
                limits,
            },
        )),
        "udp" => Arc::new(UdpTransport::with_config(
            key,
            UdpConfig {
                limits,
                max_payload: size.clamp(DEFAULT_MAX_PAYLOAD, MAX_PAYLOAD_LIMIT),
                max_associations: 1 << 16,
                ..UdpConfig::default()
            },
        )),
        "quic" => Arc::new(QuicTransport::with_config(
            key,
            QuicConfig {
                channel: channel(size),
                limits,
                ..QuicConfig::default()
            },
        )?),
        "ws" => Arc::new(WebSocketTransport::with_config(
            key,
            WsConfig {
                channel: channel(size),
                limits,
                ..WsConfig::default()
            },
        )),
        "memory" => Arc::new(MemoryTransport::with_config(
            net,
            key,
            channel(size),
            limits,
        )),
        other => bail!("unknown backend {other}"),
    })
}

fn listen_address(backend: &str) -> Result<TransportAddress> {
    Ok(match backend {
        "tcp" => "tcp://127.0.0.1:0".parse()?,
        "udp" => "udp://127.0.0.1:0".parse()?,
        "quic" => "quic://127.0.0.1:0".parse()?,
        "ws" => "ws://127.0.0.1:0/bench".parse()?,
        "memory" => TransportAddress::Memory(0),
        other => bail!("unknown backend {other}"),
    })
}

/// A dialing and a listening transport of one backend, and the listener.
pub(crate) struct Setup {
    /// The dialing side.
    pub(crate) client: Arc<dyn Transport>,
    /// The listening side.
    pub(crate) server: Arc<dyn Transport>,
    /// The server's listener.
    pub(crate) listener: Box<dyn Listener>,
    /// Where it listens.
    pub(crate) addr: TransportAddress,
    _net: MemoryNetwork,
}

impl Setup {
    /// Both transports of `backend` for `size`-byte messages, the server listening.
    pub(crate) async fn new(backend: &str, size: usize) -> Result<Self> {
        let net = MemoryNetwork::new();
        let client = transport(backend, size, &net)?;
        let server = transport(backend, size, &net)?;
        let listener = server.listen(&listen_address(backend)?).await?;
        let addr = listener.local_addr().clone();
        Ok(Self {
            client,
            server,
            listener,
            addr,
            _net: net,
        })
    }

    /// One authenticated connection: (dialed, accepted).
    pub(crate) async fn connect(&mut self) -> Result<(Connection, Connection)> {
        let peer = self.server.local_peer_id();
        let (dialed, accepted) = tokio::join!(
            self.client.dial(&self.addr, Some(peer)),
            self.listener.accept_connection()
        );
        Ok((dialed?, accepted?))
    }
}

/// Time to move `count` messages of `size` bytes one way, first send to last receipt.
pub(crate) async fn throughput(backend: &str, size: usize, count: usize) -> Result<Duration> {
    let mut setup = Setup::new(backend, size).await?;
    let (sender, mut receiver) = setup.connect().await?;
    let payload = Bytes::from(vec![0xA5u8; size]);
    let receive = tokio::spawn(async move {
        for _ in 0..count {
            receiver.recv().await?.context("closed early")?;
        }
        // The receiver is handed back so it is still open while the sender closes.
        anyhow::Ok((Instant::now(), receiver))
    });
    let start = Instant::now();
    for _ in 0..count {
        sender.send(payload.clone()).await?;
    }
    let (end, receiver) = receive.await??;
    sender.close("done").await?;
    drop(receiver);
    Ok(end - start)
}

/// `rounds` round trips of one `size`-byte message (the accepted side echoes), in microseconds.
pub(crate) async fn rtt(backend: &str, size: usize, rounds: usize) -> Result<Vec<f64>> {
    let mut setup = Setup::new(backend, size).await?;
    let (mut client, mut server) = setup.connect().await?;
    let echo = tokio::spawn(async move {
        while let Some(m) = server.recv().await? {
            server.send(m).await?;
        }
        anyhow::Ok(())
    });
    let payload = Bytes::from(vec![0x5Au8; size]);
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        client.send(payload.clone()).await?;
        client.recv().await?.context("echo closed")?;
        out.push(start.elapsed().as_secs_f64() * 1e6);
    }
    client.close("done").await?;
    echo.abort();
    Ok(out)
}

/// `n` connection setups (dial until both ends are established), in microseconds.
pub(crate) async fn setup(backend: &str, n: usize) -> Result<Vec<f64>> {
    let mut setup = Setup::new(backend, 1024).await?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let (a, b) = setup.connect().await?;
        out.push(start.elapsed().as_secs_f64() * 1e6);
        drop((a, b));
    }
    Ok(out)
}
