//! Throughput of `WebSocketTransport` (ws://, loopback, Noise inside) against raw
//! tokio-tungstenite sending binary messages of the same size, in the same run.
//!
//! ```text
//! cargo run --release -p bitcraps-transport-ws --example ws_throughput [-- <MiB per run> <runs>]
//! ```
//!
//! Each run sends one direction (dialer to listener, so both mask as WebSocket clients do)
//! and stops the clock when the receiver has every byte. Raw tokio-tungstenite uses `feed`
//! per message and one `flush` at the end (its best case: tungstenite flushes its write
//! buffer as it fills); ours uses `Connection::send` per message. The median run is printed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bitcraps_transport_core::{Bytes, ConnectionLimits, Keypair, Transport};
use bitcraps_transport_ws::{WebSocketTransport, WsConfig};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// One-way transfer of `count` messages of `size` bytes through our transport.
async fn ours(size: usize, count: usize) -> Result<Duration> {
    let config = || WsConfig {
        limits: ConnectionLimits::unlimited(),
        ..WsConfig::default()
    };
    let server = WebSocketTransport::with_config(Keypair::generate(), config());
    let client = WebSocketTransport::with_config(Keypair::generate(), config());
    let mut listener = server.listen(&"ws://127.0.0.1:0/bitcraps".parse()?).await?;
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        client.dial(&addr, Some(server.local_peer_id())),
        listener.accept_connection()
    );
    let (dialed, mut accepted) = (dialed?, accepted?);
    let payload = Bytes::from(vec![0xa5u8; size]);
    let total = size * count;
    let start = Instant::now();
    let send = tokio::spawn(async move {
        for _ in 0..count {
            dialed.send(payload.clone()).await?;
        }
        anyhow::Ok(dialed)
    });
    let mut got = 0;
    while got < total {
        got += accepted.recv().await?.context("closed early")?.len();
    }
    let elapsed = start.elapsed();
    let dialed = send.await??;
    dialed.close("done").await?;
    Ok(elapsed)
}

/// The same transfer over raw tokio-tungstenite (no Noise, no framing of ours).
async fn raw(size: usize, count: usize) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accept = async {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        anyhow::Ok(tokio_tungstenite::accept_async(tcp).await?)
    };
    let connect = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp).await?;
        anyhow::Ok(ws)
    };
    let (server, mut client) = tokio::try_join!(accept, connect)?;
    let payload = Bytes::from(vec![0xa5u8; size]);
    let total = size * count;
    let start = Instant::now();
    let send = tokio::spawn(async move {
        for _ in 0..count {
            client.feed(Message::Binary(payload.clone())).await?;
        }
        client.flush().await?;
        anyhow::Ok(client)
    });
    let mut server = server;
    let mut got = 0;
    while got < total {
        match server.next().await.context("closed early")?? {
            Message::Binary(b) => got += b.len(),
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    let mut client = send.await??;
    client.close(None).await.ok();
    Ok(elapsed)
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(512);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!("one-way loopback transfer of {mib} MiB per run, median of {runs} runs");
        for size in [64 * 1024, 1024] {
            let count = mib * 1024 * 1024 / size;
            let bytes = (size * count) as f64;
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                b.push(raw(size, count).await?);
                a.push(ours(size, count).await?);
            }
            let (ours_t, raw_t) = (median(a), median(b));
            let ours_rate = bytes / ours_t.as_secs_f64() / 1e9;
            let raw_rate = bytes / raw_t.as_secs_f64() / 1e9;
            println!(
                "{:>6} B messages: WebSocketTransport {ours_rate:.3} GB/s ({:.0} msg/s) | \
                 raw tokio-tungstenite {raw_rate:.3} GB/s ({:.0} msg/s) | ratio {:.2}",
                size,
                count as f64 / ours_t.as_secs_f64(),
                count as f64 / raw_t.as_secs_f64(),
                ours_rate / raw_rate
            );
        }
        anyhow::Ok(())
    })
}
