//! Connection setup and idle memory on rust-libp2p, measured as bitcraps-bench measures ours.
//!
//! Setup: from `Swarm::dial` to the first `libp2p-stream` stream on the new connection being
//! open (transport connect, Noise and yamux upgrades or QUIC's TLS 1.3, and the stream's
//! multistream-select negotiation): an authenticated, multiplexed connection with a usable
//! stream, the moment our `dial` returns an authenticated connection. Each setup dials a fresh
//! connection (the previous one is closed untimed first); one client and one server swarm serve
//! all setups, as one pair of transports serves ours.
//!
//! Idle memory: the process's resident set before and after opening `n` connections between
//! two swarms in one process (both ends counted), per connection, in a process of its own.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};

use crate::{swarm, PROTOCOL};

type Node = Swarm<libp2p_stream::Behaviour>;

/// A listening server swarm driven by its own task (inbound streams are accepted and dropped);
/// its address and id.
async fn server(listen: &str) -> Result<(Multiaddr, PeerId)> {
    let mut server = swarm()?;
    let mut incoming = server.behaviour().new_control().accept(PROTOCOL)?;
    server.listen_on(listen.parse()?)?;
    let addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let id = *server.local_peer_id();
    tokio::spawn(async move {
        loop {
            server.select_next_some().await;
        }
    });
    tokio::spawn(async move { while incoming.next().await.is_some() {} });
    Ok((addr, id))
}

/// Drives `client` until `done` resolves, failing on an outgoing connection error.
async fn drive<T>(client: &mut Node, done: impl std::future::Future<Output = T>) -> Result<T> {
    let mut done = std::pin::pin!(done);
    loop {
        tokio::select! {
            out = &mut done => return Ok(out),
            ev = client.select_next_some() => {
                if let SwarmEvent::OutgoingConnectionError { error, .. } = ev {
                    bail!("dial: {error}");
                }
            }
        }
    }
}

/// `n` setups over the transport of `listen`, in microseconds.
pub(crate) async fn setup(listen: &str, n: usize) -> Result<Vec<f64>> {
    let (addr, server_id) = server(listen).await?;
    let addr = addr.with(Protocol::P2p(server_id));
    let mut client = swarm()?;
    let mut control = client.behaviour().new_control();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        client.dial(addr.clone())?;
        let stream = drive(&mut client, control.open_stream(server_id, PROTOCOL)).await??;
        out.push(start.elapsed().as_secs_f64() * 1e6);
        drop(stream);
        // Close untimed, and wait until it is gone so the next setup dials a new connection.
        if client.disconnect_peer_id(server_id).is_ok() {
            while !matches!(
                client.select_next_some().await,
                SwarmEvent::ConnectionClosed {
                    num_established: 0,
                    ..
                }
            ) {}
        }
    }
    Ok(out)
}

fn rss_bytes() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no VmRSS line")?
        .parse()?;
    Ok(kib * 1024)
}

/// KiB of resident memory per idle connection (both ends in this process, no stream open).
pub(crate) async fn idle_memory(listen: &str, n: usize) -> Result<f64> {
    let (addr, server_id) = server(listen).await?;
    let mut client = swarm()?;
    let opts = || {
        DialOpts::peer_id(server_id)
            .addresses(vec![addr.clone()])
            .condition(PeerCondition::Always)
            .build()
    };
    // One connection first warms the allocator and both swarms up; then `n` more, one dial
    // at a time (a thousand concurrent QUIC handshakes time out on a small machine).
    client.dial(opts())?;
    let mut established = 0;
    let mut before = None;
    while established < n + 1 {
        match client.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => {
                established += 1;
                if established == 1 {
                    before = Some(rss_bytes()?);
                }
                if established < n + 1 {
                    client.dial(opts())?;
                }
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => bail!("dial: {error}"),
            _ => {}
        }
    }
    // Let both ends settle into their idle state (the client keeps being driven).
    drive(&mut client, tokio::time::sleep(Duration::from_millis(200))).await?;
    let after = rss_bytes()?;
    let before = before.context("no first connection")?;
    Ok(after.saturating_sub(before) as f64 / n as f64 / 1024.0)
}

/// Runs `--idle-only BACKEND` in a fresh process of this binary and parses its figure.
pub(crate) fn idle_in_child(backend: &str, n: usize) -> Result<f64> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["--idle-only", backend, "--connections", &n.to_string()])
        .output()
        .context("running the idle-memory child")?;
    if !out.status.success() {
        bail!(
            "idle-memory child for {backend} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("idle-memory child printed no number")
}
