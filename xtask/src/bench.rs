//! `cargo xtask bench`: builds and runs `bitcraps-bench` in release (each backend against the
//! best straightforward use of its raw library, same run), optionally the rust-libp2p runner
//! in `crates/bench-libp2p` (outside the workspace, `--with-libp2p`), and writes
//! `target/bench/report.json`, `docs/benchmarks.md` and the plots in `docs/bench/`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use crate::bench_report;
use crate::process::{check, Cmd};

/// Options of `cargo xtask bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Smaller workloads: 128 MiB per throughput measurement, 5,000 round trips, 200 setups
    /// (well under three minutes on a 2-core machine).
    #[arg(long)]
    quick: bool,
    /// Backends to measure (comma separated: tcp,udp,quic,ws,memory); default: all.
    #[arg(long)]
    backends: Option<String>,
    /// Bytes moved per throughput measurement (the runner's default otherwise).
    #[arg(long)]
    bytes: Option<usize>,
    /// Repetitions per throughput measurement (the median is reported).
    #[arg(long)]
    repeat: Option<usize>,
    /// Also build and run the rust-libp2p comparison (crates/bench-libp2p, its own lockfile,
    /// never part of the workspace or CI) and merge its figures into the report.
    #[arg(long)]
    with_libp2p: bool,
    /// Print the report but write nothing under docs/.
    #[arg(long)]
    no_write: bool,
    /// Measure nothing: rewrite docs/benchmarks.md and the plots from the last run's
    /// target/bench/report.json and coordinator.md (after editing the reading notes).
    #[arg(long)]
    from_report: bool,
}

/// Runs the benchmarks and writes the report.
pub(crate) fn run(root: &Path, args: &BenchArgs) -> Result<()> {
    let started = Instant::now();
    let out_dir = root.join("target/bench");
    let json_path = out_dir.join("report.json");
    let coordinator_path = out_dir.join("coordinator.md");
    if args.from_report {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .with_context(|| format!("reading {} (run `cargo xtask bench` first)", p.display()))
        };
        let report: serde_json::Value = serde_json::from_str(&read(&json_path)?)?;
        return write_docs(root, &report, &read(&coordinator_path)?, args.no_write);
    }
    let mut runner = vec![
        "run".to_string(),
        "--release".into(),
        "--locked".into(),
        "-p".into(),
        "bitcraps-bench".into(),
        "--".into(),
    ];
    if args.quick {
        runner.push("--quick".into());
    }
    if let Some(b) = &args.backends {
        runner.extend(["--backends".into(), b.clone()]);
    }
    if let Some(b) = args.bytes {
        runner.extend(["--bytes".into(), b.to_string()]);
    }
    if let Some(r) = args.repeat {
        runner.extend(["--repeat".into(), r.to_string()]);
    }
    let cmd = Cmd::cargo(root, &runner);
    let captured = cmd.run_captured()?;
    check(captured.status, &cmd)?;
    let mut records = bench_report::parse_records(&captured.stdout)?;
    let libp2p_status = if args.with_libp2p {
        let (status, libp2p) = run_libp2p(root, args.quick)?;
        bench_report::merge_libp2p(&mut records, &libp2p);
        status
    } else {
        // Every record carries the field (null) so the report's shape does not depend on it.
        bench_report::merge_libp2p(&mut records, &[]);
        "not run (pass --with-libp2p)".to_string()
    };
    let mut command = "cargo xtask bench".to_string();
    if args.quick {
        command.push_str(" --quick");
    }
    if args.with_libp2p {
        command.push_str(" --with-libp2p");
    }
    if let Some(b) = &args.backends {
        command.push_str(&format!(" --backends {b}"));
    }
    if let Some(b) = args.bytes {
        command.push_str(&format!(" --bytes {b}"));
    }
    if let Some(r) = args.repeat {
        command.push_str(&format!(" --repeat {r}"));
    }
    let date = Cmd::new("date", root)
        .args(&["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .probe()
        .unwrap_or_default();
    let report = bench_report::report_json(
        &machine(root),
        &command,
        date.trim(),
        &libp2p_status,
        &records,
    );
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("wrote {}", json_path.display());
    let coordinator = if args.backends.as_deref().is_none_or(|b| b.contains("tcp")) {
        coordinator_section(root, args.quick)?
    } else {
        String::new()
    };
    std::fs::write(&coordinator_path, &coordinator)
        .with_context(|| format!("writing {}", coordinator_path.display()))?;
    write_docs(root, &report, &coordinator, args.no_write)?;
    eprintln!(
        "cargo xtask bench took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes docs/benchmarks.md (the report, then the coordinator section) and the plots, or
/// prints the markdown with `no_write`.
fn write_docs(
    root: &Path,
    report: &serde_json::Value,
    coordinator: &str,
    no_write: bool,
) -> Result<()> {
    let plots = bench_report::plots(report);
    let captions: Vec<(String, String)> = plots
        .iter()
        .map(|(f, c, _)| (f.clone(), c.clone()))
        .collect();
    let mut markdown = bench_report::render_markdown(report, &captions);
    markdown.push_str(coordinator);
    if no_write {
        println!("{markdown}");
        return Ok(());
    }
    let dir = root.join("docs/bench");
    std::fs::create_dir_all(&dir)?;
    for (file, _, svg) in &plots {
        std::fs::write(dir.join(file), svg)
            .with_context(|| format!("writing docs/bench/{file}"))?;
    }
    let path = root.join("docs/benchmarks.md");
    std::fs::write(&path, markdown).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {} and {} plots", path.display(), plots.len());
    Ok(())
}

/// The coordinator over TCP against the TCP backend alone (its crate's example, same run):
/// the section docs/coordinator.md points at.
fn coordinator_section(root: &Path, quick: bool) -> Result<String> {
    let bytes = if quick { "33554432" } else { "134217728" };
    let cmd = Cmd::cargo(
        root,
        &[
            "run",
            "--release",
            "--locked",
            "-p",
            "bitcraps-coordinator",
            "--example",
            "coordinator_throughput",
            "--",
            bytes,
        ],
    );
    let captured = cmd.run_captured()?;
    // The example belongs to the coordinator crate: if it fails, say so in the report rather
    // than losing every other figure of the run.
    let failed = if captured.status.success() {
        String::new()
    } else {
        eprintln!(
            "coordinator example failed ({}); noted in the report",
            captured.status
        );
        format!(
            "\n**The example failed in this run ({}); the rows above are what it printed \
             first.**\n",
            captured.status
        )
    };
    Ok(format!(
        "\n## Coordinator over TCP against the TCP backend\n\nNot a raw-library comparison: what \
         the coordinator (acknowledged, exactly-once delivery) costs over the backend it runs \
         on, same run (`{cmd}`):\n\n```text\n{}```\n\nEach figure is the median of three \
         fresh connections moving {} MiB, so at 64 KiB, where the coordinator's envelope and \
         acknowledgements cost a few percent, the ratio lands on either side of 1.0 from run \
         to run (0.92-1.66 in `--quick` runs here); the main table's TCP figures come from the \
         longer, warmed-up measurement.\n{failed}",
        captured.stdout,
        bytes.parse::<u64>().unwrap_or(0) >> 20
    ))
}

/// Builds and runs the rust-libp2p runner; its status line and records. A build failure is
/// reported as the status (with the reason) rather than failing the whole benchmark.
fn run_libp2p(root: &Path, quick: bool) -> Result<(String, Vec<serde_json::Value>)> {
    let dir = root.join("crates/bench-libp2p");
    let manifest = dir.join("Cargo.toml");
    let manifest = manifest.to_string_lossy().into_owned();
    // Its own target directory under the ignored /target (it has its own lockfile).
    let target = root.join("target/bench-libp2p");
    let target = target.to_string_lossy().into_owned();
    let build = Cmd::cargo(
        root,
        &[
            "build",
            "--release",
            "--locked",
            "--manifest-path",
            &manifest,
            "--target-dir",
            &target,
        ],
    );
    let built = build.run_captured()?;
    if !built.status.success() {
        let status = format!(
            "could not be built here (`{build}` failed, {}); no libp2p figures",
            built.status
        );
        eprintln!("rust-libp2p: {status}");
        return Ok((status, Vec::new()));
    }
    let mut run = vec![
        "run",
        "--release",
        "--locked",
        "--manifest-path",
        &manifest,
        "--target-dir",
        &target,
        "--",
    ];
    if quick {
        run.push("--quick");
    }
    let cmd = Cmd::cargo(root, &run);
    let captured = cmd.run_captured()?;
    check(captured.status, &cmd)?;
    let records = bench_report::parse_records(&captured.stdout)?;
    Ok((
        "libp2p 0.57 and libp2p-stream 0.5.0-alpha (crates/bench-libp2p): TCP+Noise+yamux and QUIC, 256 KiB buffered writer; setup to the first open stream, idle memory per connection; same machine and run"
            .to_string(),
        records,
    ))
}

fn machine(root: &Path) -> String {
    let probe = |p: &str, a: &[&str]| Cmd::new(p, root).args(a).probe().unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{} cores ({cpu}); {}; {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        probe("rustc", &["--version"]).trim(),
        probe("uname", &["-srm"]).trim()
    )
}
