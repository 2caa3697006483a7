//! A dice table whose transport comes from a flag, with no other code change: the table and
//! two players are `TransportCoordinator`s over `Arc<dyn Transport>`, and only [`transport`]
//! looks at the flag. Three rounds: each player bets (with a delivery receipt), the table
//! rolls and tells everyone the result.
//!
//! `cargo run -p bitcraps-coordinator --example dice_table -- --transport quic|ble-sim|memory|tcp`
//! (default `memory`; loopback or in-process only, a few seconds).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bitcraps_coordinator::{CoordinatorEvent, EventStream, Priority, TransportCoordinator};
use bitcraps_transport_ble::sim::{SimConfig, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::BleTransport;
use bitcraps_transport_core::{Bytes, Keypair, Transport, TransportAddress};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use bitcraps_transport_quic::QuicTransport;
use bitcraps_transport_tcp::TcpTransport;

/// What the backends of one process share: the in-memory network, the simulated radio.
struct World {
    memory: MemoryNetwork,
    radio: SimRadio,
}

/// The one place that knows the backend: a transport for `kind`, and the address to listen on.
fn transport(
    world: &World,
    kind: &str,
    key: Keypair,
) -> Result<(Arc<dyn Transport>, &'static str)> {
    Ok(match kind {
        "memory" => (
            Arc::new(MemoryTransport::new(&world.memory, key)),
            "memory://0",
        ),
        "tcp" => (Arc::new(TcpTransport::new(key)), "tcp://127.0.0.1:0"),
        "quic" => (Arc::new(QuicTransport::new(key)?), "quic://127.0.0.1:0"),
        "ble-sim" => {
            let device = Arc::new(world.radio.add_device(SimDeviceConfig::default()));
            (Arc::new(BleTransport::new(device, key)), "ble://local")
        }
        other => bail!("unknown transport {other:?} (quic, ble-sim, memory or tcp)"),
    })
}

/// A coordinator over one transport of `kind`, and where it would listen.
fn node(
    world: &World,
    kind: &str,
) -> Result<(TransportCoordinator, EventStream, TransportAddress)> {
    let (t, listen) = transport(world, kind, Keypair::generate())?;
    let c = TransportCoordinator::builder().transport(t).build()?;
    let events = c.events().context("events")?;
    Ok((c, events, listen.parse()?))
}

/// The next application message on `events`.
async fn next_data(events: &mut EventStream) -> Result<Bytes> {
    loop {
        match events.recv().await.context("coordinator gone")? {
            CoordinatorEvent::DataReceived { data, .. } => return Ok(data),
            CoordinatorEvent::Disconnected { peer, reason } => bail!("{peer} left: {reason:?}"),
            _ => {}
        }
    }
}

async fn run(kind: &str) -> Result<()> {
    let world = World {
        memory: MemoryNetwork::new(),
        radio: SimRadio::new(SimConfig::default()),
    };
    let (table, mut table_events, listen) = node(&world, kind)?;
    let address = table.listen(&listen).await?;
    println!("table {} listens on {address}", table.local_peer_id());

    let mut players = Vec::new();
    for name in ["alice", "bob"] {
        let (p, events, _) = node(&world, kind)?;
        p.connect_to_peer(table.local_peer_id(), vec![address.clone()])
            .await?;
        players.push((name, p, events));
    }
    let mut dice = 0x5eed_u64;
    for round in 1..=3 {
        for (name, p, _) in &players {
            let bet = Bytes::from(format!("{name} bets 5 on pass in round {round}"));
            let receipt = p
                .send_with_receipt(table.local_peer_id(), bet, Priority::Interactive)
                .await?;
            receipt
                .await
                .map_err(|r| anyhow::anyhow!("bet undelivered: {r:?}"))?;
            println!(
                "table got: {}",
                String::from_utf8_lossy(&next_data(&mut table_events).await?)
            );
        }
        // A toy linear congruential roll; a real table would use a commit-reveal protocol.
        let mut roll = || {
            dice = dice
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1 + (dice >> 33) % 6
        };
        let result = Bytes::from(format!("round {round}: rolled {} and {}", roll(), roll()));
        for (peer, outcome) in table.broadcast(result).await {
            outcome.with_context(|| format!("broadcast to {peer}"))?;
        }
        for (name, _, events) in &mut players {
            println!(
                "{name} hears: {}",
                String::from_utf8_lossy(&next_data(events).await?)
            );
        }
    }
    for (_, p, _) in &players {
        p.shutdown(Duration::from_secs(5)).await;
    }
    table.shutdown(Duration::from_secs(5)).await;
    println!("three rounds over {kind}, every bet acknowledged");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = match args.as_slice() {
        [] => "memory",
        [flag, kind] if flag == "--transport" => kind.as_str(),
        _ => bail!("usage: dice_table [--transport quic|ble-sim|memory|tcp]"),
    };
    tokio::time::timeout(Duration::from_secs(30), run(kind))
        .await
        .context("the example did not finish in time")?
}
