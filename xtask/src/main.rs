//! `cargo xtask`: the developer tooling of the bitcraps-transport workspace.
//!
//! - `cargo xtask ci`: format, the MSRV check, clippy, tests, the conformance suite, cargo-deny and a fuzz smoke
//!   run, in that order, stopping at the first failure.
//! - `cargo xtask conformance [--backend NAME]... [--faults]`: the cross-backend conformance
//!   suite, with a table of results per case and backend; `--faults` runs the TCP and UDP
//!   backends through the fault proxy under every fault profile instead.
//! - `cargo xtask fuzz [--seconds N] [--target NAME]`: every cargo-fuzz target (or one) for a while.
//! - `cargo xtask bench`: each backend against its raw library (throughput, round trip, setup,
//!   idle memory); writes `target/bench/report.json`, `docs/benchmarks.md` and `docs/bench/`.
//! - `cargo xtask flood [--attempts N] [--connections N]`: connection floods from many source
//!   addresses and many concurrent authenticated clients through one coordinator.
//! - `cargo xtask soak [--minutes N]`: churn through coordinators; RSS, fds and tasks sampled
//!   each second, with a plateau verdict and every message accounted for.
//! - `cargo xtask msrv`: the MSRV check alone (see `msrv.rs`).
//! - `cargo xtask sim --nodes N --seed S [--range M] [--link-cap K] [--churn P] [--partition]
//!   [--json] [--plots DIR]`: the mesh simulator (see `docs/mesh.md`).
//!
//! Every child command runs in the workspace root (the parent of this crate's directory) and is
//! printed before it runs.

mod bench;
mod bench_report;
mod ci;
mod conformance;
mod fuzz;
mod libtest;
mod msrv;
mod process;
mod report;
mod sim;
mod stress;
mod svg;
mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tooling for the bitcraps-transport workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    /// What to run.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `cargo xtask`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Everything CI checks: fmt, clippy, tests, conformance, cargo-deny, fuzz smoke.
    Ci(ci::CiArgs),
    /// The cross-backend conformance suite, summarised as a case x backend table.
    Conformance(conformance::ConformanceArgs),
    /// Run the cargo-fuzz targets under `fuzz/` (needs a nightly toolchain).
    Fuzz(fuzz::FuzzArgs),
    /// Each backend against the raw library it wraps; writes docs/benchmarks.md and docs/bench/.
    Bench(bench::BenchArgs),
    /// The mesh relay simulator: N nodes on a plane, delivery and cost figures.
    Sim(sim::SimArgs),
    /// Connection floods against the listeners, then concurrent clients through a coordinator.
    Flood(stress::FloodArgs),
    /// Churn through coordinators for N minutes; reports whether memory, fds and tasks plateau.
    Soak(stress::SoakArgs),
    /// Checks that no locked dependency needs a newer Rust than the declared `rust-version`.
    Msrv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Ci(args) => ci::run(&root, &args),
        Command::Conformance(args) => conformance::run(&root, &args),
        Command::Fuzz(args) => fuzz::run(&root, &args),
        Command::Bench(args) => bench::run(&root, &args),
        Command::Sim(args) => sim::run(&root, &args),
        Command::Flood(args) => stress::flood(&root, &args),
        Command::Soak(args) => stress::soak(&root, &args),
        Command::Msrv => msrv::check(&root),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }

    #[test]
    fn backends_repeat_and_split_on_commas() {
        let cli = Cli::try_parse_from([
            "cargo xtask",
            "conformance",
            "--backend",
            "tcp",
            "--backend",
            "ble-sim-23,mem",
        ])
        .expect("valid command line");
        let Command::Conformance(args) = cli.command else {
            panic!("parsed as another subcommand");
        };
        assert_eq!(args.backends, ["tcp", "ble-sim-23", "mem"]);
        assert_eq!(args.test_threads, 2);
    }

    #[test]
    fn sim_flags_parse() {
        let cli = Cli::try_parse_from([
            "cargo xtask",
            "sim",
            "--nodes",
            "1000",
            "--seed",
            "3",
            "--range",
            "20",
            "--link-cap",
            "5",
            "--churn",
            "0.1",
            "--partition",
            "--json",
        ])
        .expect("valid command line");
        let Command::Sim(args) = cli.command else {
            panic!("parsed as another subcommand");
        };
        assert_eq!((args.nodes, args.seed, args.link_cap), (1000, 3, Some(5)));
        assert_eq!((args.range, args.churn), (Some(20.0), 0.1));
        assert!(args.partition && args.json && args.plots.is_none());
    }

    #[test]
    fn ci_flags_parse() {
        let cli = Cli::try_parse_from([
            "cargo xtask",
            "ci",
            "--skip-deny",
            "--skip-fuzz",
            "--fuzz-seconds",
            "9",
        ])
        .expect("valid command line");
        let Command::Ci(args) = cli.command else {
            panic!("parsed as another subcommand");
        };
        assert!(args.skip_deny && args.skip_fuzz);
        assert_eq!(args.fuzz_seconds, 9);
    }
}
