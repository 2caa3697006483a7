//! Memory per idle connection: opens `n` connections (both ends in this process), reads the
//! process's resident set size before and after from /proc, and returns the difference per
//! connection (both ends together). Each kind runs in a process of its own (the runner starts
//! itself with `--idle-only`), so one measurement never reuses memory another freed.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::net::{TcpListener, TcpStream};

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

/// KiB of resident memory per idle connection of `kind` (`raw-tcp` or one of our backends).
pub(crate) async fn measure(kind: &str, n: usize) -> Result<f64> {
    if kind == "raw-tcp" {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let warm = tokio::join!(TcpStream::connect(addr), listener.accept());
        let before = rss_bytes()?;
        let mut kept = Vec::with_capacity(n);
        for _ in 0..n {
            let (c, s) = tokio::join!(TcpStream::connect(addr), listener.accept());
            kept.push((c?, s?.0));
        }
        let after = rss_bytes()?;
        drop((kept, warm));
        return Ok(after.saturating_sub(before) as f64 / n as f64 / 1024.0);
    }
    if !["tcp", "quic", "ws", "memory", "udp"].contains(&kind) {
        bail!("unknown idle kind {kind}");
    }
    let mut setup = Setup::new(kind, 1024).await?;
    // Warm up allocator and runtime with one connection first.
    let warm = setup.connect().await?;
    let before = rss_bytes()?;
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        kept.push(setup.connect().await?);
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
