//! The coordinator over TCP against the TCP backend it runs on, in the same run: one-way
//! throughput at 64 B, 1 KiB and 64 KiB (timed from the first send until the receiving
//! application holds every byte), and the 64 B round trip (p50 / p99). Part of
//! `cargo xtask bench`; alone:
//!
//! ```text
//! cargo run --release -p bitcraps-coordinator --example coordinator_throughput [-- BYTES]
//! ```
//!
//! `PROFILE=coordinator` (or `backend`) with arguments `BYTES SIZE` runs one measurement only,
//! for a profiler.
//!
//! Both sides use unlimited connection limits and receive rates, so the figures are the
//! machinery's, not a limit's. The coordinator's send path is `PeerSender::send` (it returns
//! once the message is in the window); the backend's is `ConnectionSender::send`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bitcraps_coordinator::{CoordinatorConfig, CoordinatorEvent, Priority, TransportCoordinator};
use bitcraps_transport_core::policy::RateLimits;
use bitcraps_transport_core::{
    Bytes, ChannelConfig, ConnectionLimits, Keypair, Transport, TransportAddress,
};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};

const SIZES: [usize; 3] = [64, 1024, 65536];
const ROUND_TRIPS: usize = 5_000;
const REPEAT: usize = 3;

fn tcp() -> Arc<dyn Transport> {
    let config = TcpConfig {
        channel: ChannelConfig {
            max_message_size: 1 << 20,
            ..ChannelConfig::default()
        },
        limits: ConnectionLimits::unlimited(),
    };
    Arc::new(TcpTransport::with_config(Keypair::generate(), config))
}

fn coordinator() -> anyhow::Result<TransportCoordinator> {
    let mut c = CoordinatorConfig::default();
    c.rate_limits = RateLimits::unlimited();
    c.limits = ConnectionLimits::unlimited();
    if let Some(v) = std::env::var_os("INLINE_LIMIT") {
        c.inline_limit = v
            .to_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(c.inline_limit);
    }
    Ok(TransportCoordinator::builder()
        .config(c)
        .transport(tcp())
        .build()?)
}

fn addr() -> TransportAddress {
    "tcp://127.0.0.1:0".parse().expect("address")
}

/// The TCP backend alone: seconds to move `count` messages of `size`.
async fn backend_one_way(size: usize, count: usize) -> anyhow::Result<Duration> {
    let (a, b) = (tcp(), tcp());
    let mut listener = b.listen(&addr()).await?;
    let at = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        a.dial(&at, Some(b.local_peer_id())),
        listener.accept_connection()
    );
    let sender = dialed?;
    let mut receiver = accepted?;
    let payload = Bytes::from(vec![0xA5u8; size]);
    let receive = tokio::spawn(async move {
        let mut got = 0usize;
        while got < size * count {
            got += receiver.recv().await?.context("closed early")?.len();
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

/// Two coordinators over TCP, connected; the receiver's event stream.
async fn coordinators() -> anyhow::Result<(
    TransportCoordinator,
    TransportCoordinator,
    bitcraps_coordinator::EventStream,
)> {
    let (a, b) = (coordinator()?, coordinator()?);
    let events = b.events().context("events")?;
    let at = b.listen(&addr()).await?;
    a.connect_to_peer(b.local_peer_id(), vec![at]).await?;
    Ok((a, b, events))
}

/// The coordinator over TCP: seconds to deliver `count` messages of `size`.
async fn coordinator_one_way(size: usize, count: usize) -> anyhow::Result<Duration> {
    let (a, b, mut events) = coordinators().await?;
    let sender = a.peer_sender(b.local_peer_id())?;
    let payload = Bytes::from(vec![0xA5u8; size]);
    let receive = tokio::spawn(async move {
        let mut got = 0usize;
        while got < size * count {
            match events.recv().await.context("events ended")? {
                CoordinatorEvent::DataReceived { data, .. } => got += data.len(),
                _ => continue,
            }
        }
        anyhow::Ok(Instant::now())
    });
    let start = Instant::now();
    for _ in 0..count {
        sender.send(payload.clone(), Priority::Bulk).await?;
    }
    let end = receive.await??;
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(1)).await;
    Ok(end - start)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

/// The TCP backend: 64 B ping-pong round trips.
async fn backend_rtt() -> anyhow::Result<Vec<Duration>> {
    let (a, b) = (tcp(), tcp());
    let mut listener = b.listen(&addr()).await?;
    let at = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        a.dial(&at, Some(b.local_peer_id())),
        listener.accept_connection()
    );
    let mut client = dialed?;
    let mut server = accepted?;
    tokio::spawn(async move {
        while let Ok(Some(m)) = server.recv().await {
            if server.send(m).await.is_err() {
                break;
            }
        }
    });
    let payload = Bytes::from(vec![7u8; 64]);
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        client.send(payload.clone()).await?;
        client.recv().await?.context("closed")?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

/// The coordinator over TCP: 64 B ping-pong round trips (application to application).
async fn coordinator_rtt() -> anyhow::Result<Vec<Duration>> {
    let (a, b, mut b_events) = coordinators().await?;
    let mut a_events = a.events().context("events")?;
    let echo = b.clone();
    let pa = a.local_peer_id();
    tokio::spawn(async move {
        let sender = loop {
            if let Ok(s) = echo.peer_sender(pa) {
                break s;
            }
            tokio::task::yield_now().await;
        };
        while let Some(e) = b_events.recv().await {
            if let CoordinatorEvent::DataReceived { data, .. } = e {
                if sender.send(data, Priority::Interactive).await.is_err() {
                    break;
                }
            }
        }
    });
    let sender = a.peer_sender(b.local_peer_id())?;
    let payload = Bytes::from(vec![7u8; 64]);
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        sender.send(payload.clone(), Priority::Interactive).await?;
        loop {
            if let CoordinatorEvent::DataReceived { .. } = a_events.recv().await.context("ended")? {
                break;
            }
        }
        samples.push(t.elapsed());
    }
    a.shutdown(Duration::from_secs(1)).await;
    Ok(samples)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let bytes: usize = std::env::args()
        .nth(1)
        .map(|b| b.parse())
        .transpose()?
        .unwrap_or(256 << 20);
    // `PROFILE=coordinator|backend SIZE`: one measurement only, for a profiler.
    if let Some(what) = std::env::var_os("PROFILE") {
        let size: usize = std::env::args()
            .nth(2)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(64);
        let count = (bytes / size).max(1);
        let took = if what == "backend" {
            backend_one_way(size, count).await?
        } else {
            coordinator_one_way(size, count).await?
        };
        println!("{count} x {size} B in {took:?}");
        return Ok(());
    }
    println!(
        "| message | TCP backend (GB/s) | coordinator over TCP (GB/s) | coordinator / backend |"
    );
    println!("|---|---|---|---|");
    for size in SIZES {
        let count = (bytes / size).clamp(1, 4_000_000);
        let (mut backend, mut coord) = (Vec::new(), Vec::new());
        for _ in 0..REPEAT {
            let moved = (size * count) as f64 / 1e9;
            backend.push(moved / backend_one_way(size, count).await?.as_secs_f64());
            coord.push(moved / coordinator_one_way(size, count).await?.as_secs_f64());
        }
        let (b, c) = (median(backend), median(coord));
        println!("| {size} B | {b:.3} | {c:.3} | {:.2} |", c / b);
    }
    let mut backend = backend_rtt().await?;
    let mut coord = coordinator_rtt().await?;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (b50, b99) = (
        percentile(&mut backend, 0.5),
        percentile(&mut backend, 0.99),
    );
    let (c50, c99) = (percentile(&mut coord, 0.5), percentile(&mut coord, 0.99));
    println!();
    println!("| 64 B round trip | TCP backend | coordinator over TCP | coordinator / backend |");
    println!("|---|---|---|---|");
    println!(
        "| p50 | {:.0} us | {:.0} us | {:.2} |",
        us(b50),
        us(c50),
        us(c50) / us(b50)
    );
    println!(
        "| p99 | {:.0} us | {:.0} us | {:.2} |",
        us(b99),
        us(c99),
        us(c99) / us(b99)
    );
    Ok(())
}
