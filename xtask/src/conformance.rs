//! `cargo xtask conformance`: the cross-backend conformance suite and its results table.
//!
//! Runs `cargo test --locked -p bitcraps-conformance --test conformance -- --test-threads N
//! [<backend>::]...`, streams the output through while keeping a copy, then parses the libtest
//! result lines (`<backend>::<case>`) and prints a case x backend table. Fails if a case failed,
//! if cargo failed, or if no test ran at all. With `--faults` it runs the `faults` target
//! instead: trials `<backend>::<profile>/<case>`, so the table is case x backend x profile.

use std::path::Path;

use anyhow::{bail, ensure, Result};
use clap::Args;

use crate::libtest;
use crate::process::Cmd;
use crate::report::Table;

/// The package holding the conformance suite.
pub(crate) const PACKAGE: &str = "bitcraps-conformance";

/// The integration-test target of the suite.
const TEST_TARGET: &str = "conformance";
/// The integration-test target of the fault run (`--faults`).
const FAULTS_TARGET: &str = "faults";

/// Options of `cargo xtask conformance`.
#[derive(Debug, Args)]
pub(crate) struct ConformanceArgs {
    /// Only this backend (repeatable, or comma-separated), e.g. `tcp` or `ble-sim-23`.
    ///
    /// Each becomes the libtest filter `NAME::`; filters match as substrings.
    #[arg(long = "backend", value_name = "NAME", value_delimiter = ',')]
    pub(crate) backends: Vec<String>,
    /// Threads libtest runs tests on.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub(crate) test_threads: usize,
    /// Run the backends on TCP or UDP through the fault proxy under every fault profile
    /// instead (rows `<profile>/<case>`, one column per backend).
    #[arg(long)]
    pub(crate) faults: bool,
}

impl Default for ConformanceArgs {
    fn default() -> Self {
        Self {
            backends: Vec::new(),
            test_threads: 2,
            faults: false,
        }
    }
}

/// The cargo arguments that run the suite with these options.
pub(crate) fn cargo_args(args: &ConformanceArgs) -> Result<Vec<String>> {
    ensure!(args.test_threads > 0, "--test-threads must be at least 1");
    let mut cargo: Vec<String> = [
        "test",
        "--locked",
        "-p",
        PACKAGE,
        "--test",
        if args.faults {
            FAULTS_TARGET
        } else {
            TEST_TARGET
        },
        "--",
        "--test-threads",
    ]
    .map(String::from)
    .into();
    cargo.push(args.test_threads.to_string());
    for backend in &args.backends {
        ensure!(
            !backend.is_empty()
                && !backend.contains("::")
                && !backend.chars().any(char::is_whitespace),
            "invalid backend name {backend:?}: expected a single name such as `tcp` or `ble-sim-23`"
        );
        cargo.push(format!("{backend}::"));
    }
    Ok(cargo)
}

/// Runs the suite, prints the table, and fails unless every case that ran passed.
pub(crate) fn run(root: &Path, args: &ConformanceArgs) -> Result<()> {
    let cmd = Cmd::cargo(root, &cargo_args(args)?);
    let captured = cmd.run_captured()?;
    let parsed = libtest::parse(&captured.stdout);
    let table = Table::new(&parsed.results);

    println!();
    if args.faults {
        println!("fault results ({PACKAGE}: per profile/case and backend)");
    } else {
        println!("conformance results ({PACKAGE}: per case and backend)");
    }
    println!();
    print!("{}", table.render());
    for name in &parsed.unresolved {
        println!("warning: `{name}` was started but its outcome could not be read");
    }

    let totals = table.totals();
    if totals.failed > 0 {
        bail!("{} conformance case(s) failed", totals.failed);
    }
    if !captured.status.success() {
        bail!("`{cmd}` failed ({})", captured.status);
    }
    if totals.ran() == 0 {
        if args.backends.is_empty() {
            bail!("no conformance test ran");
        }
        bail!(
            "no conformance test ran for backend(s) {}",
            args.backends.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_runs_everything_on_two_threads() {
        let args = cargo_args(&ConformanceArgs::default()).expect("valid");
        assert_eq!(
            args.join(" "),
            "test --locked -p bitcraps-conformance --test conformance -- --test-threads 2"
        );
    }

    #[test]
    fn backends_become_prefix_filters() {
        let args = ConformanceArgs {
            backends: vec!["tcp".into(), "ble-sim-23".into()],
            test_threads: 1,
            faults: false,
        };
        let args = cargo_args(&args).expect("valid");
        assert_eq!(
            args[args.len() - 4..],
            ["--test-threads", "1", "tcp::", "ble-sim-23::"]
        );
    }

    #[test]
    fn faults_run_the_fault_target() {
        let args = ConformanceArgs {
            faults: true,
            ..ConformanceArgs::default()
        };
        let args = cargo_args(&args).expect("valid");
        assert_eq!(
            args.join(" "),
            "test --locked -p bitcraps-conformance --test faults -- --test-threads 2"
        );
    }

    #[test]
    fn rejects_bad_names_and_zero_threads() {
        for bad in ["", "tcp::x", "a b"] {
            let args = ConformanceArgs {
                backends: vec![bad.into()],
                ..ConformanceArgs::default()
            };
            assert!(cargo_args(&args).is_err(), "{bad:?} accepted");
        }
        let args = ConformanceArgs {
            test_threads: 0,
            ..ConformanceArgs::default()
        };
        assert!(cargo_args(&args).is_err());
    }
}
