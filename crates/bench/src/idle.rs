//! Memory per idle authenticated connection: opens `n` TCP connections (both ends in this
//! process, as DESIGN.md's baseline figures were measured), reads the process's resident set
//! size before and after from /proc, and prints the difference per connection.

use std::sync::Arc;

use anyhow::Context;

use bitcraps_transport_core::{ChannelConfig, ConnectionLimits, Keypair, Transport};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};

fn rss_bytes() -> anyhow::Result<u64> {
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

/// Prints the resident memory per idle connection (both ends) after `n` connections.
pub(crate) async fn run(n: usize) -> anyhow::Result<()> {
    let config = TcpConfig {
        channel: ChannelConfig::default(),
        limits: ConnectionLimits::unlimited(),
    };
    let server = Arc::new(TcpTransport::with_config(
        Keypair::generate(),
        config.clone(),
    ));
    let client = Arc::new(TcpTransport::with_config(Keypair::generate(), config));
    let mut listener = server.listen(&"tcp://127.0.0.1:0".parse()?).await?;
    let addr = listener.local_addr().clone();
    // Warm up allocator and runtime with one connection first.
    let warm = client.dial(&addr, None).await?;
    let warm_in = listener.accept_connection().await?;
    let before = rss_bytes()?;
    let mut kept = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let (d, a) = tokio::join!(client.dial(&addr, None), listener.accept_connection());
        kept.push(d?);
        kept.push(a?);
    }
    let after = rss_bytes()?;
    let per = (after.saturating_sub(before)) as f64 / n as f64 / 1024.0;
    println!(
        "{n} idle authenticated TCP connections (both ends in one process): {per:.1} KiB per connection \
         ({:.1} KiB per end)",
        per / 2.0
    );
    drop((kept, warm, warm_in));
    Ok(())
}
