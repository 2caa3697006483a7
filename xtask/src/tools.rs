//! Cargo subcommands installed on demand: cargo-deny and cargo-fuzz.
//!
//! A tool that answers `--version` is used as it is, whatever its version; a missing one is
//! installed with `cargo install <crate> --version <pin> --locked`, saying so first.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::process::Cmd;

/// A cargo subcommand that can be installed from crates.io.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    /// The crate to install.
    pub(crate) krate: &'static str,
    /// The pinned version to install.
    pub(crate) version: &'static str,
    /// The cargo arguments that print its version, proving it is usable.
    pub(crate) probe: &'static [&'static str],
    /// Roughly how long an install takes here, for the message printed before it.
    pub(crate) install_time: &'static str,
}

/// cargo-deny, pinned so every CI run installs the same build (0.18.3 needs rustc 1.85; CI builds
/// it with the machine's toolchain, not with our MSRV).
pub(crate) const CARGO_DENY: Tool = Tool {
    krate: "cargo-deny",
    version: "0.18.3",
    probe: &["deny", "--version"],
    install_time: "about 2-4 minutes",
};

/// cargo-fuzz, built with the default toolchain and run as `cargo +nightly fuzz`.
pub(crate) const CARGO_FUZZ: Tool = Tool {
    krate: "cargo-fuzz",
    version: "0.13.2",
    probe: &["+nightly", "fuzz", "--version"],
    install_time: "under a minute",
};

/// Makes sure `tool` is usable, installing it if it is not. Never reinstalls.
pub(crate) fn ensure(root: &Path, tool: Tool) -> Result<()> {
    if let Some(version) = Cmd::cargo(root, tool.probe).probe() {
        println!("{} is installed: {}", tool.krate, version.trim());
        return Ok(());
    }
    println!(
        "{} is not installed: installing {} {} from crates.io with --locked ({})",
        tool.krate, tool.krate, tool.version, tool.install_time
    );
    let started = Instant::now();
    Cmd::cargo(
        root,
        &["install", tool.krate, "--version", tool.version, "--locked"],
    )
    .run()?;
    println!(
        "installed {} {} in {:.0} s",
        tool.krate,
        tool.version,
        started.elapsed().as_secs_f64()
    );
    match Cmd::cargo(root, tool.probe).probe() {
        Some(version) => {
            println!("{} is installed: {}", tool.krate, version.trim());
            Ok(())
        }
        None => bail!(
            "`cargo {}` still fails after installing {}",
            tool.probe.join(" "),
            tool.krate
        ),
    }
}
