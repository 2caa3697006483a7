//! `bitcraps-bench`: measures each backend's one-way message throughput on loopback against the
//! raw library it wraps, in the same run, and prints a Markdown table with the ratio.
//! Run through `cargo xtask bench` (release build), which also writes `docs/benchmarks.md`.

mod idle;
mod micro;
mod raw;
mod run;

use std::time::Duration;

use clap::Parser;

/// Command line of the benchmark runner.
#[derive(Parser, Debug)]
#[command(about = "Throughput of each backend versus the raw library it wraps")]
struct Args {
    /// Bytes to move per measurement.
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    bytes: usize,
    /// Message sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![65536usize, 1024])]
    sizes: Vec<usize>,
    /// Backends to measure (tcp, memory).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["tcp".to_string(), "memory".to_string()])]
    backends: Vec<String>,
    /// Repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Only run the record-layer micro benchmark (no I/O) and exit.
    #[arg(long)]
    micro: bool,
    /// Only measure resident memory per idle connection with this many connections, and exit.
    #[arg(long)]
    idle_connections: Option<usize>,
}

/// One measured row.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    backend: String,
    size: usize,
    ours: f64,
    raw: f64,
    raw_name: &'static str,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn gbps(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e9
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(n) = args.idle_connections {
        return idle::run(n).await;
    }
    if args.micro {
        for suite in bitcraps_transport_core::secure::CipherSuite::ALL {
            for &size in &args.sizes {
                micro::run(size, (128 * 1024 * 1024 / size).clamp(1, 100_000), suite)?;
            }
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    for backend in &args.backends {
        for &size in &args.sizes {
            let count = (args.bytes / size).max(1);
            let mut ours = Vec::new();
            let mut raw = Vec::new();
            let mut raw_name = "";
            for _ in 0..args.repeat.max(1) {
                let (name, r) = raw::measure(backend, size, count).await?;
                raw_name = name;
                raw.push(gbps(size * count, r));
                ours.push(gbps(
                    size * count,
                    run::measure(backend, size, count).await?,
                ));
            }
            let row = Row {
                backend: backend.clone(),
                size,
                ours: median(ours),
                raw: median(raw),
                raw_name,
            };
            eprintln!("{row:?}");
            rows.push(row);
        }
    }
    println!("| backend | message | ours (GB/s) | raw library | raw (GB/s) | ours / raw |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} B | {:.3} | {} | {:.3} | {:.2} |",
            r.backend,
            r.size,
            r.ours,
            r.raw_name,
            r.raw,
            r.ours / r.raw
        );
    }
    Ok(())
}
