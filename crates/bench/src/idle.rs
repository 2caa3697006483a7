//! Memory per idle connection: opens `n` connections (both ends in this process), reads the
//! process's resident set size before and after from /proc, and returns the difference per
//! connection (both ends together). Each kind runs in a process of its own (the runner starts
//! itself with `--idle-only`), so one measurement never reuses memory another freed.
//!
//! Every raw connection end has one task waiting to read, as any application that receives
//! has (ours has its connection task): TCP waits for readability (no buffer), quinn in
//! `read_chunk` (no buffer), tokio-tungstenite in `next` (which holds its read buffer, as it
//! does for every reader).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::ours::Setup;

fn rss_bytes() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmRSS")?
        .parse()?;
    Ok(kib * 1024)
}

/// KiB of resident memory per idle connection of `kind`: `raw-tcp`, `raw-quic`, `raw-ws` or
/// one of our backends.
pub(crate) async fn measure(kind: &str, n: usize) -> Result<f64> {
    match kind {
        "raw-tcp" => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            per_connection(n, async || {
                let (c, s) = tokio::join!(TcpStream::connect(addr), listener.accept());
                let read = |t: TcpStream| Reading(tokio::spawn(async move { t.readable().await }));
                anyhow::Ok((read(c?), read(s?.0)))
            })
            .await
        }
        "raw-quic" => {
            let endpoints = crate::raw_quic::endpoints()?;
            per_connection(n, async || {
                let (cc, cs, mut cr, sc, ss, mut sr) = crate::raw_quic::connect(&endpoints).await?;
                let c = tokio::spawn(async move { cr.read_chunk(usize::MAX, true).await.is_ok() });
                let s = tokio::spawn(async move { sr.read_chunk(usize::MAX, true).await.is_ok() });
                anyhow::Ok((cc, cs, sc, ss, Reading(c), Reading(s)))
            })
            .await
        }
        "raw-ws" => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            per_connection(n, async || {
                let (c, s) = crate::raw_ws::pair(&listener).await?;
                let read = |mut ws: crate::raw_ws::Ws| {
                    Reading(tokio::spawn(async move { ws.next().await.is_some() }))
                };
                anyhow::Ok((read(c), read(s)))
            })
            .await
        }
        "tcp" | "quic" | "ws" | "memory" | "udp" => {
            let mut setup = Setup::new(kind, 1024).await?;
            per_connection(n, async || setup.connect().await).await
        }
        _ => bail!("unknown idle kind {kind}"),
    }
}

/// A raw end's reading task, stopped when the measurement drops it.
struct Reading<T>(JoinHandle<T>);

impl<T> Drop for Reading<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens one connection to warm the allocator and runtime, then `n` more, and returns the
/// resident memory they added per connection, in KiB, once their tasks have settled.
async fn per_connection<T>(n: usize, mut connect: impl AsyncFnMut() -> Result<T>) -> Result<f64> {
    let warm = connect().await?;
    let before = rss_bytes()?;
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        kept.push(connect().await?);
    }
    // Let every connection's tasks settle into their idle state.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_bytes()?;
    drop((kept, warm));
    Ok(after.saturating_sub(before) as f64 / n as f64 / 1024.0)
}

/// Runs `--idle-only KIND` in a fresh process of this binary and parses its figure.
pub(crate) fn in_child(kind: &str, n: usize) -> Result<f64> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args(["--idle-only", kind, "--connections", &n.to_string()])
        .output()
        .context("running the idle-memory child")?;
    if !out.status.success() {
        bail!(
            "idle-memory child for {kind} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("idle-memory child printed no number")
}
