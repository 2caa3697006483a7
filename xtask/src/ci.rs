//! `cargo xtask ci`: every check CI makes, in order, stopping at the first failure.
//!
//! 1. `cargo fmt --all -- --check`
//! 2. msrv: no locked dependency needs a newer Rust than the declared `rust-version`
//!    (see [`crate::msrv`])
//! 3. `cargo clippy --workspace --all-targets --all-features --locked -- -D warnings`
//! 4. `cargo test --workspace --locked --exclude bitcraps-conformance`
//! 5. examples: every entry of [`EXAMPLES`], built once with the test profile, then run (each
//!    must finish by itself, loopback only)
//! 6. the conformance suite, as `cargo xtask conformance` runs it
//! 7. cargo-deny (installed if missing): `cargo fetch --locked`, then
//!    `cargo deny --offline check licenses bans sources` (advisories need a network CI lacks)
//! 8. fuzz smoke: every cargo-fuzz target for a few seconds, if there is a nightly toolchain
//!
//! Each step is printed as a header, then with its duration; a summary closes the run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

use crate::conformance::{self, ConformanceArgs};
use crate::fuzz::{self, WithoutNightly};
use crate::process::Cmd;
use crate::tools;

/// Options of `cargo xtask ci`.
#[derive(Debug, Args)]
pub(crate) struct CiArgs {
    /// Do not run cargo-deny (nor install it).
    #[arg(long)]
    pub(crate) skip_deny: bool,
    /// Do not run the fuzz smoke test.
    #[arg(long)]
    pub(crate) skip_fuzz: bool,
    /// Seconds of fuzzing per target in the fuzz smoke test.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub(crate) fuzz_seconds: u64,
}

/// How a step that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ran {
    /// It ran and passed.
    Done,
    /// It had nothing to do or could not run here; the reason says which.
    Skipped(String),
}

/// The name of each step, in order.
const STEPS: [&str; 8] = [
    "fmt",
    "msrv",
    "clippy",
    "test",
    "examples",
    "conformance",
    "deny",
    "fuzz",
];

/// The examples CI runs: package, example, arguments. Add a line to add one.
const EXAMPLES: &[(&str, &str, &[&str])] = &[
    ("bitcraps-transport-tcp", "tcp_quickstart", &[]),
    ("bitcraps-transport-tcp", "setup_handshakes", &["20"]),
    ("bitcraps-transport-core", "handshake_cost", &["20"]),
    ("bitcraps-discovery", "lan", &[]),
    ("bitcraps-coordinator", "quickstart", &[]),
    ("bitcraps-coordinator", "failover", &[]),
    (
        "bitcraps-coordinator",
        "dice_table",
        &["--transport", "memory"],
    ),
    (
        "bitcraps-coordinator",
        "dice_table",
        &["--transport", "tcp"],
    ),
    (
        "bitcraps-coordinator",
        "dice_table",
        &["--transport", "quic"],
    ),
    (
        "bitcraps-coordinator",
        "dice_table",
        &["--transport", "ble-sim"],
    ),
];

/// Runs every step in order; the first failure ends the run with an error.
pub(crate) fn run(root: &Path, args: &CiArgs) -> Result<()> {
    let started = Instant::now();
    let mut summary: Vec<(&str, Duration, String)> = Vec::new();
    for (index, name) in STEPS.into_iter().enumerate() {
        println!();
        println!("==> [{}/{}] {name}", index + 1, STEPS.len());
        let step_started = Instant::now();
        let result = step(root, args, name);
        let took = step_started.elapsed();
        let status = match &result {
            Ok(Ran::Done) => "ok".to_owned(),
            Ok(Ran::Skipped(why)) => format!("skipped: {why}"),
            Err(err) => format!("FAILED: {err:#}"),
        };
        println!(
            "<== [{}/{}] {name}: {status} ({})",
            index + 1,
            STEPS.len(),
            secs(took)
        );
        summary.push((name, took, status));
        if let Err(err) = result {
            print_summary(&summary, started.elapsed());
            return Err(err).with_context(|| format!("ci step `{name}` failed"));
        }
    }
    print_summary(&summary, started.elapsed());
    Ok(())
}

/// Runs the step called `name`.
fn step(root: &Path, args: &CiArgs, name: &str) -> Result<Ran> {
    match name {
        "fmt" => cargo(root, &["fmt", "--all", "--", "--check"]),
        "msrv" => {
            crate::msrv::check(root)?;
            Ok(Ran::Done)
        }
        "clippy" => cargo(
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                // Every optional backend role compiles too (the bluer BLE peripheral).
                "--all-features",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        "test" => cargo(
            root,
            &[
                "test",
                "--workspace",
                "--locked",
                "--exclude",
                conformance::PACKAGE,
            ],
        ),
        "examples" => examples(root),
        "conformance" => {
            conformance::run(root, &ConformanceArgs::default())?;
            Ok(Ran::Done)
        }
        "deny" if args.skip_deny => Ok(Ran::Skipped("--skip-deny".to_owned())),
        "deny" => deny(root),
        "fuzz" if args.skip_fuzz => Ok(Ran::Skipped("--skip-fuzz".to_owned())),
        "fuzz" => fuzz::fuzz(root, args.fuzz_seconds, None, WithoutNightly::Skip),
        other => unreachable!("no ci step called {other}"),
    }
}

/// Builds every example of [`EXAMPLES`] in one cargo call (test profile), then runs each.
fn examples(root: &Path) -> Result<Ran> {
    let mut build = vec!["build", "--profile", "test", "--locked"];
    for (package, example, _) in EXAMPLES {
        build.extend(["-p", package, "--example", example]);
    }
    Cmd::cargo(root, &build).run()?;
    for (package, example, args) in EXAMPLES {
        let mut run = vec!["run", "--profile", "test", "--locked", "-q"];
        run.extend(["-p", package, "--example", example, "--"]);
        run.extend_from_slice(args);
        Cmd::cargo(root, &run)
            .run()
            .with_context(|| format!("example {example} {}", args.join(" ")))?;
    }
    Ok(Ran::Done)
}

/// Runs `cargo <args>` as a step.
fn cargo(root: &Path, args: &[&str]) -> Result<Ran> {
    Cmd::cargo(root, args).run()?;
    Ok(Ran::Done)
}

/// The cargo-deny step: install if needed, fetch every crate (so the offline check sees them all,
/// for every target platform), check licenses, bans and sources against `deny.toml`.
fn deny(root: &Path) -> Result<Ran> {
    tools::ensure(root, tools::CARGO_DENY)?;
    Cmd::cargo(root, &["fetch", "--locked"]).run()?;
    Cmd::cargo(
        root,
        &[
            "deny",
            "--offline",
            "--locked",
            "--all-features",
            "check",
            "licenses",
            "bans",
            "sources",
        ],
    )
    .run()?;
    Ok(Ran::Done)
}

/// Prints every step that ran with its outcome and duration, then the total.
fn print_summary(summary: &[(&str, Duration, String)], total: Duration) {
    println!();
    println!("ci summary:");
    for (name, took, status) in summary {
        println!("  {name:<12} {:>8}  {status}", secs(*took));
    }
    for name in STEPS.iter().skip(summary.len()) {
        println!("  {name:<12} {:>8}  not run", "");
    }
    println!("  {:<12} {:>8}", "total", secs(total));
}

/// A duration as seconds with one decimal, e.g. `12.3 s`.
fn secs(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations() {
        assert_eq!(secs(Duration::from_millis(12_345)), "12.3 s");
        assert_eq!(secs(Duration::ZERO), "0.0 s");
    }

    #[test]
    fn skips_are_honoured_without_running_anything() {
        let args = CiArgs {
            skip_deny: true,
            skip_fuzz: true,
            fuzz_seconds: 5,
        };
        let root = Path::new("/nonexistent");
        assert_eq!(
            step(root, &args, "deny").expect("skipped"),
            Ran::Skipped("--skip-deny".to_owned())
        );
        assert_eq!(
            step(root, &args, "fuzz").expect("skipped"),
            Ran::Skipped("--skip-fuzz".to_owned())
        );
    }
}
