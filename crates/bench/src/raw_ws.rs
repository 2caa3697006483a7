//! Raw tokio-tungstenite baseline over plain TCP, with our framing: application messages as
//! u32 big-endian length frames packed into binary WebSocket messages of at most 64 KiB (as our
//! backend packs its records; one message per WebSocket message would pay tungstenite's and
//! the client's masking cost per message, a worse use of the library than ours), `feed` per
//! WebSocket message and one `flush` per 256 KiB, the receiver splitting the frames. Round trips
//! send one message per WebSocket message. Both ends use the buffer
//! sizes our backend configures (64 KiB read, 128 KiB write): tungstenite zero-fills the spare
//! capacity of its read buffer before every read, so its default 128 KiB read buffer costs a
//! 128 KiB memset per read and made the raw side slower than ours on round trips.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Bytes of messages fed between two flushes.
const BATCH: usize = 256 * 1024;
/// The largest WebSocket message the sender packs frames into (our backend's).
const WS_MESSAGE: usize = 64 * 1024;

/// The raw library's name in the report.
pub(crate) const NAME: &str = "tokio-tungstenite (frames packed into 64 KiB messages)";

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// The tungstenite settings of our backend's default `WsConfig`.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(128 * 1024)
}

pub(crate) async fn pair(listener: &TcpListener) -> Result<(Ws, Ws)> {
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
        let mut seen = 0;
        while seen < count {
            let m = server.next().await.context("closed early")??;
            let mut data = m.into_data();
            while data.remaining() >= 4 {
                let len = data.get_u32() as usize;
                anyhow::ensure!(data.remaining() >= len, "a frame split across messages");
                std::hint::black_box(data.split_to(len));
                seen += 1;
            }
        }
        anyhow::Ok(Instant::now())
    });
    let payload = vec![0xA5u8; size];
    let mut packed = BytesMut::with_capacity(WS_MESSAGE);
    let mut unflushed = 0;
    let start = Instant::now();
    for _ in 0..count {
        if !packed.is_empty() && packed.len() + 4 + size > WS_MESSAGE {
            unflushed += packed.len();
            client
                .feed(Message::Binary(packed.split().freeze()))
                .await?;
            if unflushed >= BATCH {
                client.flush().await?;
                unflushed = 0;
            }
        }
        packed.put_u32(size as u32);
        packed.put_slice(&payload);
    }
    if !packed.is_empty() {
        client
            .feed(Message::Binary(packed.split().freeze()))
            .await?;
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
