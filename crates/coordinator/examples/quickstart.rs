//! The README's quickstart: a table and a player on `TransportCoordinator`s over TCP; the
//! player's bet comes with a delivery receipt.
//!
//! `cargo run -p bitcraps-coordinator --example quickstart`

use std::sync::Arc;
use std::time::Duration;

use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
use bitcraps_transport_core::{Keypair, Transport};
use bitcraps_transport_tcp::TcpTransport;

/// A coordinator over one TCP transport (add more with `.transport(..)`: routes fail over).
fn node() -> anyhow::Result<TransportCoordinator> {
    let tcp: Arc<dyn Transport> = Arc::new(TcpTransport::new(Keypair::generate()));
    Ok(TransportCoordinator::builder().transport(tcp).build()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let table = node()?;
    let mut events = table.events().expect("taken once");
    let address = table.listen(&"tcp://127.0.0.1:0".parse()?).await?;

    let player = node()?;
    // The dial checks that the table proves this PeerId; list more routes to fail over.
    player
        .connect_to_peer(table.local_peer_id(), vec![address])
        .await?;
    let receipt = player
        .send_with_receipt(
            table.local_peer_id(),
            "bet 5 on 7".into(),
            Priority::Interactive,
        )
        .await?;
    receipt
        .await
        .map_err(|r| anyhow::anyhow!("undelivered: {r:?}"))?;
    while let Some(event) = events.recv().await {
        if let CoordinatorEvent::DataReceived { peer, data } = event {
            println!("table got {data:?} from {peer}");
            break;
        }
    }
    player.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
