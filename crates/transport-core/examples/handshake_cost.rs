//! CPU cost of one Noise XX handshake with identity binding, both sides in one thread (no I/O):
//! between identities that never met (every identity signature verified) and between two that
//! met before (the verified bindings are cached, see `secure/bindings.rs`).
//!
//! `cargo run --release -p bitcraps-transport-core --example handshake_cost [N]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcraps_transport_core::secure::handshake::{InitiatorHandshake, ResponderHandshake};
use bitcraps_transport_core::secure::{CipherSuite, LocalIdentity};
use bitcraps_transport_core::Keypair;

/// One full handshake between `a` (dialer) and `b`; returns its duration.
fn handshake(a: &LocalIdentity, b: &LocalIdentity) -> anyhow::Result<Duration> {
    let suite = CipherSuite::AesGcmSha256;
    let started = Instant::now();
    let (mut dialer, msg1) = InitiatorHandshake::start(a, suite, Some(b.peer_id()))?;
    let (listener, msg2) = ResponderHandshake::respond(b, &CipherSuite::ALL, &msg1)?;
    dialer.read_message2(&msg2)?;
    let (msg3, _, _, _) = dialer.write_message3()?;
    let (peer, _, _) = listener.read_message3(&msg3)?;
    let took = started.elapsed();
    anyhow::ensure!(peer == a.peer_id(), "the listener proved the dialer");
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(500), |a| a.parse())?;
    // Strangers: fresh identities each time (made before the clock starts).
    let strangers: Vec<(Arc<LocalIdentity>, Arc<LocalIdentity>)> = (0..n)
        .map(|_| {
            (
                LocalIdentity::new(Keypair::generate()),
                LocalIdentity::new(Keypair::generate()),
            )
        })
        .collect();
    let cold = strangers
        .iter()
        .map(|(a, b)| handshake(a, b))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Acquaintances: one pair, after a first handshake cached both bindings.
    let (a, b) = (
        LocalIdentity::new(Keypair::generate()),
        LocalIdentity::new(Keypair::generate()),
    );
    handshake(&a, &b)?;
    let warm = (0..n)
        .map(|_| handshake(&a, &b))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (cold, warm) = (median(cold), median(warm));
    println!("handshakes: {n} each; CPU for both sides, median");
    println!("  strangers (signatures verified): {cold:?}");
    println!("  known peers (bindings cached):   {warm:?}");
    println!(
        "  saved: {:?} ({:.0} %)",
        cold.saturating_sub(warm),
        100.0 * (1.0 - warm.as_secs_f64() / cold.as_secs_f64())
    );
    Ok(())
}
