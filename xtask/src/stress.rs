//! `cargo xtask flood` and `cargo xtask soak --minutes N`: the coordinator's flood and soak
//! tests (`crates/coordinator/tests/flood.rs`, `soak.rs`) in release, at full size.
//!
//! - `flood`: 10,000 connection attempts from 10,000 loopback source addresses against a TCP
//!   backend listener and against a coordinator's listener, then 1,000 concurrent
//!   authenticated clients through one coordinator; a legitimate client must be served after
//!   each; prints peak RSS and open fds. CI runs the same test scaled down.
//! - `soak`: churn (connects, disconnects, failovers, bursts) for N minutes, sampling RSS, open
//!   fds and live tokio tasks each second; reports whether each plateaus and accounts for
//!   every message. Not in CI.

use std::path::Path;

use anyhow::Result;
use clap::Args;

use crate::process::Cmd;

/// Options of `cargo xtask flood`.
#[derive(Debug, Args)]
pub(crate) struct FloodArgs {
    /// Connection attempts per listener, each from its own source address.
    #[arg(long, default_value_t = 10_000)]
    attempts: usize,
    /// Concurrent authenticated clients through one coordinator.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
}

/// Options of `cargo xtask soak`.
#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// How long to churn, in minutes.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
}

/// `cargo test --release -p bitcraps-coordinator --test <test> -- <extra> --nocapture`.
fn coordinator_test(root: &Path, test: &str, extra: &[&str]) -> Cmd {
    Cmd::cargo(
        root,
        &[
            "test",
            "--release",
            "-p",
            "bitcraps-coordinator",
            "--test",
            test,
            "--",
            "--nocapture",
        ],
    )
    .args(extra)
}

/// Runs the flood at the given sizes.
pub(crate) fn flood(root: &Path, args: &FloodArgs) -> Result<()> {
    // The test reads its sizes from the environment; xtask is single-threaded here.
    std::env::set_var("BITCRAPS_FLOOD_ATTEMPTS", args.attempts.to_string());
    std::env::set_var("BITCRAPS_FLOOD_CONNS", args.connections.to_string());
    println!(
        "flood: BITCRAPS_FLOOD_ATTEMPTS={} BITCRAPS_FLOOD_CONNS={}",
        args.attempts, args.connections
    );
    coordinator_test(root, "flood", &[]).run()
}

/// Runs the soak for the given time.
pub(crate) fn soak(root: &Path, args: &SoakArgs) -> Result<()> {
    let seconds = args.minutes.max(1) * 60;
    std::env::set_var("BITCRAPS_SOAK_SECONDS", seconds.to_string());
    println!("soak: BITCRAPS_SOAK_SECONDS={seconds}");
    coordinator_test(root, "soak", &["--ignored"]).run()
}
