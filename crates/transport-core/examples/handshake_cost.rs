//! CPU cost of one handshake with identity binding, both sides in one thread (no I/O): Noise XX
//! between identities that never met (every identity signature verified), XX between two that
//! met before (the verified bindings are cached, see `secure/bindings.rs`), and the 1-RTT Noise
//! IK that a dial to a known peer uses (one more X25519 operation per side than XX, one round
//! trip fewer: worth it wherever a round trip costs more than the difference).
//!
//! `cargo run --release -p bitcraps-transport-core --example handshake_cost [N]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcraps_transport_core::secure::handshake::{InitiatorHandshake, ResponderHandshake};
use bitcraps_transport_core::secure::handshake_ik::{self, IkInitiator};
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

/// One IK handshake from `a` to `b`, whose static key `a` already holds; returns its duration.
fn handshake_ik(a: &LocalIdentity, b: &LocalIdentity) -> anyhow::Result<Duration> {
    let suite = CipherSuite::AesGcmSha256;
    let started = Instant::now();
    let (dialer, msg1) = IkInitiator::start(a, suite, b.peer_id(), b.noise_public())?;
    let answer = handshake_ik::respond(b, &CipherSuite::ALL, &msg1)?;
    dialer.read_message2(&answer.msg2)?;
    let took = started.elapsed();
    anyhow::ensure!(answer.peer == a.peer_id(), "the listener proved the dialer");
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
    let ik = (0..n)
        .map(|_| handshake_ik(&a, &b))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (cold, warm, ik) = (median(cold), median(warm), median(ik));
    println!("handshakes: {n} each; CPU for both sides, median");
    println!("  XX, strangers (signatures verified): {cold:?}");
    println!("  XX, known peers (bindings cached):   {warm:?}");
    println!("  IK, known peers (1 round trip):      {ik:?}");
    println!(
        "  XX saved by the cache: {:?} ({:.0} %)",
        cold.saturating_sub(warm),
        100.0 * (1.0 - warm.as_secs_f64() / cold.as_secs_f64())
    );
    Ok(())
}
