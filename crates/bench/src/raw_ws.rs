//! Raw tokio-tungstenite baseline: one binary WebSocket message per application message over
//! plain TCP, `feed` per message and one `flush` per 256 KiB batch (tungstenite buffers the
//! frames in between), the receiver taking messages from the stream. Both ends use the buffer
//! sizes our backend configures (64 KiB read, 128 KiB write): tungstenite zero-fills the spare
//! capacity of its read buffer before every read, so its default 128 KiB read buffer costs a
//! 128 KiB memset per read and made the raw side slower than ours on round trips.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Bytes of messages fed between two flushes.
const BATCH: usize = 256 * 1024;

/// The raw library's name in the report.
pub(crate) const NAME: &str = "tokio-tungstenite (feed, flush per batch)";

type Ws = WebSocketStream<TcpStream>;

/// The tungstenite settings of our backend's default `WsConfig`.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(128 * 1024)
}

async fn pair(listener: &TcpListener) -> Result<(Ws, Ws)> {
    let addr = listener.local_addr()?;
    let accept = async {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        anyhow::Ok(tokio_tungstenite::accept_async_with_config(tcp, Some(config())).await?)
    };
    let dial = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            format!("ws://{addr}/"),
            tcp,
            Some(config()),
        )
        .await?;
        anyhow::Ok(ws)
    };
    let (a, d) = tokio::join!(accept, dial);
    Ok((d?, a?))
}

/// Time to move `count` messages of `size` bytes one way.
pub(crate) async fn throughput(size: usize, count: usize) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let (mut client, mut server) = pair(&listener).await?;
    let receive = tokio::spawn(async move {
        for _ in 0..count {
            let m = server.next().await.context("closed early")??;
            std::hint::black_box(m);
        }
        anyhow::Ok(Instant::now())
    });
    let payload = Bytes::from(vec![0xA5u8; size]);
    let per_batch = (BATCH / size.max(1)).max(1);
    let start = Instant::now();
    for i in 0..count {
        client.feed(Message::Binary(payload.clone())).await?;
        if (i + 1) % per_batch == 0 {
            client.flush().await?;
        }
    }
    client.flush().await?;
    let end = receive.await??;
    Ok(end - start)
}

/// `rounds` round trips of one `size`-byte message, in microseconds.
pub(crate) async fn rtt(size: usize, rounds: usize) -> Result<Vec<f64>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let (mut client, mut server) = pair(&listener).await?;
    let echo = tokio::spawn(async move {
        while let Some(Ok(m)) = server.next().await {
            server.send(m).await?;
        }
        anyhow::Ok(())
    });
    let payload = Bytes::from(vec![0x5Au8; size]);
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        client.send(Message::Binary(payload.clone())).await?;
        client.next().await.context("echo closed")??;
        out.push(start.elapsed().as_secs_f64() * 1e6);
    }
    echo.abort();
    Ok(out)
}

/// `n` setups: TCP connect and the HTTP upgrade, in microseconds.
pub(crate) async fn setup(n: usize) -> Result<Vec<f64>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let p = pair(&listener).await?;
        out.push(start.elapsed().as_secs_f64() * 1e6);
        drop(p);
    }
    Ok(out)
}
