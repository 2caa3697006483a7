//! A coordinator with two routes and failover: a player reaches the table over memory
//! (preferred) and TCP. Ten bets go over memory; then the table's memory listener and its
//! connections go away, the coordinator notices by itself, traffic moves to TCP and ten more
//! bets follow; the memory route comes back and traffic switches back to it (after
//! `switch_back_after` answered probes) for the last ten. Every bet has a delivery receipt, and
//! the table checks it got each bet exactly once, in order.
//!
//! `cargo run -p bitcraps-coordinator --example failover` (loopback only, a few seconds).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bitcraps_coordinator::{CoordinatorEvent, Priority, Receipt, TransportCoordinator};
use bitcraps_transport_core::{Bytes, Keypair, PeerId, Transport, TransportAddress};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use bitcraps_transport_tcp::TcpTransport;
use tokio::sync::mpsc;

/// Bets per phase (before the failure, while failed over, after the switch-back).
const PER_PHASE: u32 = 10;

/// A coordinator over memory and TCP, with one identity and a short health interval (so the
/// switch-back happens within the example's few seconds).
fn node(net: &MemoryNetwork, key: [u8; 32]) -> Result<TransportCoordinator> {
    let mem: Arc<dyn Transport> =
        Arc::new(MemoryTransport::new(net, Keypair::from_secret_bytes(key)));
    let tcp: Arc<dyn Transport> = Arc::new(TcpTransport::new(Keypair::from_secret_bytes(key)));
    Ok(TransportCoordinator::builder()
        .transport(mem)
        .transport(tcp)
        .health_interval(Duration::from_millis(100))
        .build()?)
}

/// Sends bets `range` with receipts and waits for every receipt.
async fn bets(
    player: &TransportCoordinator,
    table: PeerId,
    range: std::ops::Range<u32>,
) -> Result<()> {
    let mut receipts: Vec<Receipt> = Vec::new();
    for i in range {
        let bet = Bytes::from(format!("bet {i}: 5 on pass"));
        receipts.push(
            player
                .send_with_receipt(table, bet, Priority::Interactive)
                .await?,
        );
    }
    for r in receipts {
        let id = r.id();
        r.await
            .map_err(|reason| anyhow::anyhow!("bet {id:?} undelivered: {reason:?}"))?;
    }
    Ok(())
}

async fn run() -> Result<()> {
    let net = MemoryNetwork::new();
    let table = node(&net, [1; 32])?;
    let player = node(&net, [2; 32])?;
    let memory = table.listen(&"memory://0".parse()?).await?;
    let tcp = table.listen(&"tcp://127.0.0.1:0".parse()?).await?;

    // The table counts the bets it receives: each once, in order.
    let mut table_events = table.events().context("table events")?;
    let received = tokio::spawn(async move {
        let mut next = 0;
        while next < 3 * PER_PHASE {
            match table_events.recv().await {
                Some(CoordinatorEvent::DataReceived { data, .. }) => {
                    let expected = format!("bet {next}: 5 on pass");
                    ensure!(
                        data == expected.as_bytes(),
                        "got {data:?}, expected {expected}"
                    );
                    next += 1;
                }
                Some(_) => {}
                None => bail!("the table stopped after {next} bets"),
            }
        }
        Ok(next)
    });

    // The player's route changes and breaker transitions, printed and forwarded.
    let mut events = player.events().context("player events")?;
    let (routes_tx, mut routes) = mpsc::channel::<TransportAddress>(16);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                CoordinatorEvent::RouteChanged { from, to, .. } => {
                    println!("route changed: {from:?} -> {to}");
                    let _ = routes_tx.send(to).await;
                }
                CoordinatorEvent::Breaker { route, state, .. } => {
                    println!("breaker of {route}: {state:?}");
                }
                CoordinatorEvent::LinkFailed {
                    address, failure, ..
                } => {
                    println!("link to {address} failed: {failure:?}");
                }
                _ => {}
            }
        }
    });

    let table_id = table.local_peer_id();
    player
        .connect_to_peer(table_id, vec![memory.clone(), tcp.clone()])
        .await?;
    bets(&player, table_id, 0..PER_PHASE).await?;
    println!("{PER_PHASE} bets acknowledged over {memory}");

    // The memory route goes away; nobody tells the player's coordinator.
    table.close_listener(&memory).await?;
    bets(&player, table_id, PER_PHASE..2 * PER_PHASE).await?;
    while routes.recv().await.context("events ended")? != tcp {}
    println!("{PER_PHASE} more bets acknowledged after failover to {tcp}");

    // The memory route returns at the same address; traffic goes back once it proved itself.
    ensure!(table.listen(&memory).await? == memory, "memory route moved");
    while routes.recv().await.context("events ended")? != memory {}
    bets(&player, table_id, 2 * PER_PHASE..3 * PER_PHASE).await?;
    println!("{PER_PHASE} more bets acknowledged after switching back to {memory}");

    let got = received.await??;
    println!("the table received {got} bets, each exactly once, in order");
    ensure!(
        player.shutdown(Duration::from_secs(5)).await.flushed,
        "unflushed"
    );
    table.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(30), run())
        .await
        .context("the example did not finish in time")?
}
