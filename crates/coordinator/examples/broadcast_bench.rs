//! Broadcast to 100 in-memory peers vs one send, through the full coordinator stack (Noise
//! channel, envelopes, acks). Run once in release:
//!
//! ```text
//! cargo run --release -p bitcraps-coordinator --example broadcast_bench
//! ```
//!
//! "Delivered" means the message reached the remote application (its `DataReceived` event).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bitcraps_coordinator::{CoordinatorConfig, CoordinatorEvent, Priority, TransportCoordinator};
use bitcraps_transport_core::policy::RateLimits;
use bitcraps_transport_core::{Bytes, ChannelConfig, ConnectionLimits, Keypair, TransportAddress};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use tokio::sync::mpsc;

const PEERS: usize = 100;

fn config() -> CoordinatorConfig {
    let mut c = CoordinatorConfig::default();
    c.rate_limits = RateLimits::unlimited();
    c.limits = ConnectionLimits::unlimited();
    c
}

fn coordinator(net: &MemoryNetwork) -> anyhow::Result<TransportCoordinator> {
    let transport = MemoryTransport::with_config(
        net,
        Keypair::generate(),
        ChannelConfig::default(),
        ConnectionLimits::unlimited(),
    );
    Ok(TransportCoordinator::builder()
        .config(config())
        .transport(Arc::new(transport))
        .build()?)
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    println!(
        "{name:<44} n={n:<5} p50={:>10.1?} p90={:>10.1?} mean={:>10.1?}",
        samples[n / 2],
        samples[n * 9 / 10],
        mean
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let net = MemoryNetwork::new();
    let hub = coordinator(&net)?;
    let _hub_events = hub.events().context("events")?;
    // Every receiver reports each delivered message here.
    let (tx, mut delivered) = mpsc::channel::<()>(4 * PEERS);
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        let c = coordinator(&net)?;
        let mut events = c.events().context("events")?;
        let addr = c.listen(&TransportAddress::Memory(0)).await?;
        hub.connect_to_peer(c.local_peer_id(), vec![addr]).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let CoordinatorEvent::DataReceived { .. } = e {
                    if tx.send(()).await.is_err() {
                        return;
                    }
                }
            }
        });
        peers.push(c);
    }
    let payload = Bytes::from(vec![0x42u8; 64]);
    let first = peers[0].local_peer_id();

    // Warm up.
    for _ in 0..200 {
        hub.send_to_peer(first, payload.clone(), Priority::Interactive)
            .await?;
        delivered.recv().await.context("delivery")?;
    }

    let mut one = Vec::new();
    for _ in 0..2_000 {
        let t = Instant::now();
        hub.send_to_peer(first, payload.clone(), Priority::Interactive)
            .await?;
        delivered.recv().await.context("delivery")?;
        one.push(t.elapsed());
    }
    let mut call = Vec::new();
    let mut all = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        let results = hub.broadcast(payload.clone()).await;
        call.push(t.elapsed());
        anyhow::ensure!(
            results.iter().all(|(_, r)| r.is_ok()),
            "a broadcast send failed"
        );
        for _ in 0..PEERS {
            delivered.recv().await.context("delivery")?;
        }
        all.push(t.elapsed());
    }
    println!("64-byte messages, memory backend, {PEERS} peers, release build");
    summary("one send_to_peer -> delivered", one.clone());
    summary("broadcast() call returns (100 queued)", call);
    summary("broadcast -> delivered to all 100", all.clone());
    let ratio = all[all.len() / 2].as_secs_f64() / one[one.len() / 2].as_secs_f64();
    println!("broadcast to {PEERS} / one send (p50): {ratio:.1}x");
    hub.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
