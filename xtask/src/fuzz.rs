//! Fuzzing with cargo-fuzz on the nightly toolchain: `cargo xtask fuzz` and the CI smoke run.
//!
//! For every target that `cargo +nightly fuzz list` prints in `<root>/fuzz` (or the one asked
//! for): `cargo +nightly fuzz run <target> target/fuzz-corpus/<target> fuzz/corpus/<target> --
//! -max_total_time=<N> -rss_limit_mb=2048`: the committed seed corpus is read, new inputs go to
//! the scratch corpus under `target/`, so a run never dirties the repository. With no nightly
//! toolchain the CI smoke run is skipped (and says why) while `cargo xtask fuzz` fails.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::ci::Ran;
use crate::process::Cmd;
use crate::tools;

/// libFuzzer's memory limit for every run.
const RSS_LIMIT_MB: u32 = 2048;

/// Options of `cargo xtask fuzz`.
#[derive(Debug, Args)]
pub(crate) struct FuzzArgs {
    /// Seconds of fuzzing per target (libFuzzer's `-max_total_time`, not counting the build).
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub(crate) seconds: u64,
    /// Only this target (as listed by `cargo +nightly fuzz list`).
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
}

/// What to do when there is no nightly toolchain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WithoutNightly {
    /// Skip with a message (the CI smoke run).
    Skip,
    /// Fail (`cargo xtask fuzz`).
    Fail,
}

/// `cargo xtask fuzz`.
pub(crate) fn run(root: &Path, args: &FuzzArgs) -> Result<()> {
    match fuzz(
        root,
        args.seconds,
        args.target.as_deref(),
        WithoutNightly::Fail,
    )? {
        Ran::Done => Ok(()),
        Ran::Skipped(why) => {
            println!("fuzzing skipped: {why}");
            Ok(())
        }
    }
}

/// Runs every fuzz target (or `only`) for `seconds` each.
pub(crate) fn fuzz(
    root: &Path,
    seconds: u64,
    only: Option<&str>,
    without_nightly: WithoutNightly,
) -> Result<Ran> {
    if let Err(why) = nightly(root) {
        match without_nightly {
            WithoutNightly::Skip => return Ok(Ran::Skipped(why)),
            WithoutNightly::Fail => bail!(
                "fuzzing needs a nightly toolchain (cargo-fuzz uses -Z flags): {why}; \
                 install one with `rustup toolchain install nightly`"
            ),
        }
    }
    let fuzz_dir = root.join("fuzz");
    if !fuzz_dir.join("Cargo.toml").is_file() {
        return Ok(Ran::Skipped(format!(
            "{} has no cargo-fuzz project yet (no Cargo.toml), so no fuzz targets",
            fuzz_dir.display()
        )));
    }
    tools::ensure(root, tools::CARGO_FUZZ)?;

    let list = Cmd::cargo(&fuzz_dir, &["+nightly", "fuzz", "list"])
        .run_captured()
        .context("listing fuzz targets")?;
    if !list.status.success() {
        bail!("`cargo +nightly fuzz list` failed ({})", list.status);
    }
    let all = targets(&list.stdout);
    if all.is_empty() {
        return Ok(Ran::Skipped(format!(
            "{} has no fuzz targets yet",
            fuzz_dir.display()
        )));
    }
    let chosen = match only {
        Some(target) if all.iter().any(|t| t == target) => vec![target.to_owned()],
        Some(target) => bail!("no fuzz target {target:?}; targets: {}", all.join(", ")),
        None => all,
    };
    for target in &chosen {
        // New inputs go to a scratch corpus under target/; the committed seeds in
        // fuzz/corpus/<target> are read, never written.
        let scratch = root.join("target").join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let seeds = fuzz_dir.join("corpus").join(target);
        let mut cmd = Cmd::cargo(&fuzz_dir, &["+nightly", "fuzz", "run"]).arg(target.as_str());
        cmd = cmd.arg(scratch.display().to_string());
        if seeds.is_dir() {
            cmd = cmd.arg(seeds.display().to_string());
        }
        cmd.arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .run()
            .with_context(|| format!("fuzz target {target} failed"))?;
    }
    println!(
        "fuzzed {} target(s) for {seconds} s each: {}",
        chosen.len(),
        chosen.join(", ")
    );
    Ok(Ran::Done)
}

/// `Ok` if rustup lists a nightly toolchain, else why not.
fn nightly(root: &Path) -> Result<(), String> {
    let list = Cmd::new("rustup", root)
        .args(&["toolchain", "list"])
        .probe()
        .ok_or_else(|| "`rustup toolchain list` failed (is rustup installed?)".to_owned())?;
    if has_nightly(&list) {
        Ok(())
    } else {
        Err("`rustup toolchain list` shows no nightly toolchain".to_owned())
    }
}

/// Whether `rustup toolchain list` output names a nightly toolchain.
fn has_nightly(toolchains: &str) -> bool {
    toolchains
        .lines()
        .any(|line| line.trim_start().starts_with("nightly"))
}

/// The target names in `cargo fuzz list` output: one per non-empty line.
fn targets(list: &str) -> Vec<String> {
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.chars().any(char::is_whitespace))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nightly_in_rustup_output() {
        let with = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-x86_64-unknown-linux-gnu\n1.95.0-x86_64-unknown-linux-gnu\n";
        assert!(has_nightly(with));
        assert!(has_nightly(
            "nightly-2025-01-01-x86_64-unknown-linux-gnu (default)\n"
        ));
        assert!(!has_nightly("stable-x86_64-unknown-linux-gnu (default)\n"));
        assert!(!has_nightly(""));
    }

    #[test]
    fn lists_targets() {
        assert_eq!(
            targets("frame_decoder\n\nnoise_handshake\n  ble_fragment \n"),
            ["frame_decoder", "noise_handshake", "ble_fragment"]
        );
        assert!(targets("").is_empty());
    }
}
