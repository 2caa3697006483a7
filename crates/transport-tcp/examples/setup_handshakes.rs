//! Connection setup over TCP loopback with each handshake: the dialer's time from `dial` to an
//! authenticated connection, median and 99th percentile, for Noise XX (two round trips) and for
//! the 1-RTT Noise IK a dial to a known peer uses (the listener's static key is cached after
//! the first connection). Both ends run in this process; on loopback a round trip costs tens of
//! microseconds, on a LAN or BLE link milliseconds, where IK's saved round trip dominates.
//!
//! `cargo run --release -p bitcraps-transport-tcp --example setup_handshakes [N]`

use std::time::{Duration, Instant};

use bitcraps_transport_core::secure::HandshakeMode;
use bitcraps_transport_core::{ChannelConfig, ConnectionLimits, Keypair, Transport};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};

fn transport(handshake: HandshakeMode) -> TcpTransport {
    TcpTransport::with_config(
        Keypair::generate(),
        TcpConfig {
            channel: ChannelConfig {
                handshake,
                ..ChannelConfig::default()
            },
            limits: ConnectionLimits::unlimited(),
        },
    )
}

async fn dial_times(handshake: HandshakeMode, n: usize) -> anyhow::Result<Vec<Duration>> {
    let (server, client) = (transport(handshake), transport(handshake));
    let mut listener = server.listen(&"tcp://127.0.0.1:0".parse()?).await?;
    let addr = listener.local_addr().clone();
    let accept = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok(conn) = listener.accept_connection().await {
            held.push(conn);
        }
    });
    // The first dial learns the listener's static key (XX either way).
    drop(client.dial(&addr, Some(server.local_peer_id())).await?);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let conn = client.dial(&addr, Some(server.local_peer_id())).await?;
        times.push(started.elapsed());
        drop(conn);
    }
    accept.abort();
    times.sort();
    Ok(times)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(300), |a| a.parse())?;
    println!("TCP loopback, {n} dials each to a known peer, dial to authenticated connection:");
    for (name, mode) in [
        ("XX (2 round trips)", HandshakeMode::XxOnly),
        ("IK (1 round trip) ", HandshakeMode::Auto),
    ] {
        let t = dial_times(mode, n).await?;
        println!(
            "  {name}: median {:?}, p99 {:?}",
            t[t.len() / 2],
            t[(t.len() * 99 / 100).min(t.len() - 1)]
        );
    }
    Ok(())
}
