//! Throughput through our transports: one authenticated connection, `count` messages of `size`
//! bytes one way, timed from the first send until the receiver has every byte.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;

use bitcraps_transport_core::{
    ChannelConfig, ConnectionLimits, Keypair, Transport, TransportAddress,
};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};

fn channel(size: usize) -> ChannelConfig {
    ChannelConfig {
        max_message_size: size.max(1024 * 1024),
        ..ChannelConfig::default()
    }
}

/// A dialing transport, a listening transport and the address to listen on.
type Pair = (Arc<dyn Transport>, Arc<dyn Transport>, TransportAddress);

fn pair(backend: &str, size: usize) -> anyhow::Result<Pair> {
    Ok(match backend {
        "tcp" => {
            let config = TcpConfig {
                channel: channel(size),
                limits: ConnectionLimits::unlimited(),
            };
            (
                Arc::new(TcpTransport::with_config(
                    Keypair::generate(),
                    config.clone(),
                )),
                Arc::new(TcpTransport::with_config(Keypair::generate(), config)),
                "tcp://127.0.0.1:0".parse()?,
            )
        }
        "memory" => {
            let net = MemoryNetwork::new();
            let mk = || {
                MemoryTransport::with_config(
                    &net,
                    Keypair::generate(),
                    channel(size),
                    ConnectionLimits::unlimited(),
                )
            };
            (Arc::new(mk()), Arc::new(mk()), TransportAddress::Memory(0))
        }
        other => bail!("unknown backend {other}"),
    })
}

/// Time to move `count` messages of `size` bytes through `backend`.
pub(crate) async fn measure(backend: &str, size: usize, count: usize) -> anyhow::Result<Duration> {
    let (a, b, addr) = pair(backend, size)?;
    let mut listener = b.listen(&addr).await?;
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        a.dial(&addr, Some(b.local_peer_id())),
        listener.accept_connection()
    );
    let sender = dialed?;
    let mut receiver = accepted?;
    let payload = Bytes::from(vec![0xA5u8; size]);
    let receive = tokio::spawn(async move {
        let mut got = 0usize;
        while got < size * count {
            let m = receiver.recv().await?.context("closed early")?;
            got += m.len();
        }
        anyhow::Ok(Instant::now())
    });
    let start = Instant::now();
    for _ in 0..count {
        sender.send(payload.clone()).await?;
    }
    let end = receive.await??;
    sender.close("done").await?;
    Ok(end - start)
}
