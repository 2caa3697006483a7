//! `cargo xtask bench`: builds and runs `bitcraps-bench` in release, which measures each backend
//! against the raw library it wraps in the same run, and writes `docs/benchmarks.md`: the
//! machine, the command, the table of ratios and a bar plot.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;

use crate::process::{check, Cmd};

/// Options of `cargo xtask bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Backends to measure (comma separated); default: all the runner knows.
    #[arg(long)]
    backends: Option<String>,
    /// Bytes moved per measurement.
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    bytes: usize,
    /// Repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print the report but do not write docs/benchmarks.md.
    #[arg(long)]
    no_write: bool,
}

/// Backends whose raw-library comparison lives in an example of their own crate (the raw
/// library needs setup the shared runner does not have: certificates for quinn, a windowed
/// sender for UDP, an HTTP upgrade for WebSocket), as (package, example, section title).
const BACKEND_EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "bitcraps-transport-quic",
        "quic_throughput",
        "QUIC vs raw quinn",
    ),
    (
        "bitcraps-transport-udp",
        "udp_throughput",
        "UDP vs raw tokio UdpSocket",
    ),
    (
        "bitcraps-transport-ws",
        "ws_throughput",
        "WebSocket vs raw tokio-tungstenite",
    ),
    (
        "bitcraps-coordinator",
        "coordinator_throughput",
        "Coordinator over TCP vs the TCP backend",
    ),
];

/// Runs the benchmarks and writes the report.
pub(crate) fn run(root: &Path, args: &BenchArgs) -> Result<()> {
    let mut runner_args = vec![
        "run".to_string(),
        "--release".into(),
        "--locked".into(),
        "-p".into(),
        "bitcraps-bench".into(),
        "--".into(),
        "--bytes".into(),
        args.bytes.to_string(),
        "--repeat".into(),
        args.repeat.to_string(),
    ];
    if let Some(b) = &args.backends {
        runner_args.push("--backends".into());
        runner_args.push(b.clone());
    }
    let cmd = Cmd::cargo(root, &runner_args);
    let captured = cmd.run_captured()?;
    check(captured.status, &cmd)?;
    let table: Vec<&str> = captured
        .stdout
        .lines()
        .filter(|l| l.starts_with('|'))
        .collect();
    let mut report = render(&table, &cmd.to_string(), &machine(root));
    for (package, example, title) in BACKEND_EXAMPLES {
        if let Some(b) = &args.backends {
            if !b.split(',').any(|x| title.to_lowercase().contains(x)) {
                continue;
            }
        }
        let cmd = Cmd::cargo(
            root,
            &[
                "run",
                "--release",
                "--locked",
                "-p",
                package,
                "--example",
                example,
            ],
        );
        let captured = cmd.run_captured()?;
        check(captured.status, &cmd)?;
        let _ = write!(
            report,
            "\n## {title}\n\nEach backend crate's own comparison with its raw library, same run \
             (`{cmd}`):\n\n```text\n{}```\n",
            captured.stdout
        );
    }
    if args.no_write {
        println!("{report}");
    } else {
        let path = root.join("docs/benchmarks.md");
        std::fs::write(&path, report).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn machine(root: &Path) -> String {
    let probe = |p: &str, a: &[&str]| Cmd::new(p, root).args(a).probe().unwrap_or_default();
    format!(
        "{} cores; {}; {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        probe("rustc", &["--version"]).trim(),
        probe("uname", &["-srm"]).trim()
    )
}

/// The Markdown report for the runner's table rows (header, separator, data rows).
pub(crate) fn render(table: &[&str], command: &str, machine: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `cargo xtask bench`; do not edit by hand. One authenticated connection on \
         loopback, messages one way, timed from the first send until the receiver holds every \
         byte; the raw library runs the same workload with the same u32 length framing and no \
         encryption, in the same run. Median of the repetitions.\n"
    );
    let _ = writeln!(out, "- Machine: {machine}\n- Command: `{command}`\n");
    for row in table {
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out, "\n## Plot: ours / raw\n\n```text");
    for row in table.iter().skip(2) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells.len() < 8 {
            continue;
        }
        let ratio: f64 = cells[6].parse().unwrap_or(0.0);
        let bar = "#".repeat((ratio * 40.0).round().clamp(0.0, 80.0) as usize);
        let _ = writeln!(
            out,
            "{:<10} {:>9} {:>5.2} {}",
            cells[1], cells[2], ratio, bar
        );
    }
    let _ = writeln!(out, "```");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_table_and_bars() {
        let rows = [
            "| backend | message | ours (GB/s) | raw library | raw (GB/s) | ours / raw |",
            "|---|---|---|---|---|---|",
            "| tcp | 65536 B | 1.000 | tokio TcpStream | 4.000 | 0.25 |",
        ];
        let r = render(&rows, "cargo run", "2 cores");
        assert!(r.contains("| tcp | 65536 B |"));
        let bar = r
            .lines()
            .find(|l| l.starts_with("tcp "))
            .expect("a bar for tcp");
        assert!(bar.ends_with(&format!(" 0.25 {}", "#".repeat(10))), "{bar}");
    }
}
