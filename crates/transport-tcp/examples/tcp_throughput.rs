//! One-way throughput on loopback: our TCP backend against raw tokio TCP used well (a 256 KiB
//! `BufWriter` / `BufReader` on each side, the same `u32` length framing), at 64 B, 1 KiB and
//! 64 KiB messages. Prints MB/s for each and the ratio ours / raw.
//!
//! `cargo run --release -p bitcraps-transport-tcp --example tcp_throughput [MiB per size] [size...]`
//!
//! `TPUT_ONLY=ours` or `TPUT_ONLY=raw` runs one side only (for profiling, e.g. under callgrind).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bitcraps_transport_core::{Bytes, Keypair, Transport};
use bitcraps_transport_tcp::TcpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

const RAW_BUFFER: usize = 256 * 1024;

async fn ours(size: usize, count: usize) -> Result<Duration> {
    let server = TcpTransport::new(Keypair::generate());
    let mut listener = server.listen(&"tcp://127.0.0.1:0".parse()?).await?;
    let addr = listener.local_addr().clone();
    let client = TcpTransport::new(Keypair::generate());
    let (dialed, accepted) = tokio::join!(
        client.dial(&addr, Some(server.local_peer_id())),
        listener.accept_connection()
    );
    let dialed = dialed?;
    let (_accepted_tx, mut rx) = accepted?.split();
    let message = Bytes::from(vec![7u8; size]);
    let start = Instant::now();
    let sender = dialed.sender();
    let writer = tokio::spawn(async move {
        for _ in 0..count {
            sender.send(message.clone()).await?;
        }
        anyhow::Ok(())
    });
    let mut got = 0;
    let mut batch = Vec::with_capacity(256);
    while got < count {
        let n = rx.recv_many(&mut batch, 256).await?;
        anyhow::ensure!(n > 0, "connection ended after {got} messages");
        got += n;
        batch.clear();
    }
    let elapsed = start.elapsed();
    writer.await??;
    dialed.close("done").await?;
    Ok(elapsed)
}

async fn raw(size: usize, count: usize) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (dialed, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let dialed = dialed?;
    let (accepted, _) = accepted?;
    dialed.set_nodelay(true)?;
    let message = vec![7u8; size];
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(RAW_BUFFER, dialed);
        for _ in 0..count {
            w.write_u32(message.len() as u32).await?;
            w.write_all(&message).await?;
        }
        w.flush().await?;
        anyhow::Ok(w)
    });
    let mut r = BufReader::with_capacity(RAW_BUFFER, accepted);
    let mut buf = vec![0u8; size];
    for _ in 0..count {
        let len = r.read_u32().await? as usize;
        anyhow::ensure!(len == size, "bad frame length {len}");
        r.read_exact(&mut buf[..len]).await?;
    }
    let elapsed = start.elapsed();
    drop(writer.await??);
    Ok(elapsed)
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mib: usize = match args.next() {
        Some(a) => a.parse().context("MiB per size")?,
        None => 256,
    };
    let mut sizes: Vec<usize> = args
        .map(|a| a.parse().context("message size"))
        .collect::<Result<_>>()?;
    if sizes.is_empty() {
        sizes = vec![64, 1024, 64 * 1024];
    }
    let only = std::env::var("TPUT_ONLY").unwrap_or_default();
    println!("size      ours MB/s    raw MB/s   ratio   ({mib} MiB per size, loopback)");
    for size in sizes {
        // Small messages move far fewer bytes per second: cap the count so each run is short.
        let count = (mib * 1024 * 1024 / size).clamp(1, 4_000_000);
        let bytes = count * size;
        let o = match only.as_str() {
            "raw" => f64::NAN,
            _ => mbps(bytes, ours(size, count).await?),
        };
        let r = match only.as_str() {
            "ours" => f64::NAN,
            _ => mbps(bytes, raw(size, count).await?),
        };
        println!("{size:>6} {o:>12.1} {r:>11.1} {:>7.2}x", o / r);
    }
    Ok(())
}
