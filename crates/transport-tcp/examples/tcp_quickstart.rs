//! Quick start: a table listens, a player dials it expecting its PeerId, bets and gets a receipt.
//!
//! `cargo run -p bitcraps-transport-tcp --example tcp_quickstart`

use bitcraps_transport_core::{Bytes, Keypair, Transport};
use bitcraps_transport_tcp::TcpTransport;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let table = TcpTransport::new(Keypair::generate());
    let mut listener = table.listen(&"tcp://127.0.0.1:0".parse()?).await?;
    let address = listener.local_addr().clone();
    tokio::spawn(async move {
        while let Ok(mut conn) = listener.accept_connection().await {
            // conn.remote_peer() was proven by the handshake.
            tokio::spawn(async move {
                while let Ok(Some(bet)) = conn.recv().await {
                    let _ = conn.send(bet).await; // echo the bet back as a receipt
                }
            });
        }
    });

    let player = TcpTransport::new(Keypair::generate());
    let mut conn = player.dial(&address, Some(table.local_peer_id())).await?;
    conn.send(Bytes::from_static(b"bet 5 on 7")).await?;
    let receipt = conn.recv().await?;
    println!("receipt: {:?}", receipt);
    conn.close("done").await?;
    Ok(())
}
