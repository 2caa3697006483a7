//! `bitcraps-bench`: measures each backend against the best straightforward use of the raw
//! library it wraps, in the same run: one-way throughput per message size, 64 B round trips,
//! connection setup and idle memory per connection. Prints one JSON record per line on stdout
//! (readable lines on stderr); `cargo xtask bench` collects them into `target/bench/report.json`
//! and `docs/benchmarks.md`.

mod idle;
mod micro;
mod ours;
mod raw_quic;
mod raw_stream;
mod raw_ws;
mod record;
mod udp;

use std::time::Duration;

use anyhow::Result;
use clap::Parser;

use record::{median, percentile, Record, Scenario};

/// Command line of the benchmark runner.
#[derive(Parser, Debug)]
#[command(about = "Each backend versus the raw library it wraps, same run")]
struct Args {
    /// Smaller workloads (128 MiB per throughput measurement; about a minute of measuring).
    #[arg(long)]
    quick: bool,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_values_t = ["tcp", "udp", "quic", "ws", "memory"].map(String::from))]
    backends: Vec<String>,
    /// Message sizes of the throughput scenario.
    #[arg(long, value_delimiter = ',', default_values_t = vec![64usize, 1024, 65536])]
    sizes: Vec<usize>,
    /// Bytes to move per throughput measurement (default 256 MiB, 128 MiB with --quick).
    #[arg(long)]
    bytes: Option<usize>,
    /// Repetitions of each throughput measurement, alternating ours and raw; the median is
    /// reported (default 3).
    #[arg(long)]
    repeat: Option<usize>,
    /// Connections of the idle-memory scenario.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Only run the record-layer micro benchmark (no I/O) and exit.
    #[arg(long)]
    micro: bool,
    /// Internal: measure idle memory of one kind in this process, print KiB per connection.
    #[arg(long, hide = true)]
    idle_only: Option<String>,
}

/// Workload sizes after `--quick` and the explicit options.
struct Plan {
    bytes: usize,
    max_messages: usize,
    repeat: usize,
    rtt_rounds: usize,
    setups: usize,
}

impl Plan {
    fn new(args: &Args) -> Self {
        let (bytes, max_messages, repeat, rtt_rounds, setups) = if args.quick {
            (128 << 20, 1_000_000, 3, 5_000, 200)
        } else {
            (256 << 20, 2_000_000, 3, 10_000, 500)
        };
        Self {
            bytes: args.bytes.unwrap_or(bytes),
            max_messages,
            repeat: args.repeat.unwrap_or(repeat).max(1),
            rtt_rounds,
            setups,
        }
    }

    fn count(&self, size: usize) -> usize {
        (self.bytes / size.max(1)).clamp(1, self.max_messages)
    }
}

fn gbps(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64().max(1e-9) / 1e9
}

/// The backend's name as a static string for the records.
fn backend_name(b: &str) -> Option<&'static str> {
    ["tcp", "udp", "quic", "ws", "memory"]
        .into_iter()
        .find(|k| *k == b)
}

fn raw_name(backend: &str) -> &'static str {
    match backend {
        "quic" => raw_quic::NAME,
        "ws" => raw_ws::NAME,
        "udp" => udp::NAME,
        other => raw_stream::name(other),
    }
}

async fn throughput(backend: &'static str, size: usize, plan: &Plan) -> Result<Option<Record>> {
    let count = plan.count(size);
    if backend == "udp" {
        if size > bitcraps_transport_udp::MAX_PAYLOAD_LIMIT {
            eprintln!("udp: {size} B does not fit one datagram, skipped");
            return Ok(None);
        }
        let (mut ours, mut raw, mut ours_d, mut raw_d) = (vec![], vec![], vec![], vec![]);
        for _ in 0..plan.repeat {
            let r = udp::raw(size, count).await?;
            raw.push(r.gbps(size));
            raw_d.push(r.delivered as f64 / count as f64);
            let o = udp::ours(size, count).await?;
            ours.push(o.gbps(size));
            ours_d.push(o.delivered as f64 / count as f64);
        }
        let mut rec = Record::new(
            backend,
            Scenario::Throughput,
            size,
            median(&mut ours),
            Some(median(&mut raw)),
            udp::NAME,
        );
        rec.delivered = Some((median(&mut ours_d), median(&mut raw_d)));
        return Ok(Some(rec));
    }
    let (mut ours, mut raw) = (vec![], vec![]);
    for _ in 0..plan.repeat {
        let r = match backend {
            "quic" => raw_quic::throughput(size, count).await?,
            "ws" => raw_ws::throughput(size, count).await?,
            _ => raw_stream::throughput(backend, size, count).await?,
        };
        raw.push(gbps(size * count, r));
        ours.push(gbps(
            size * count,
            ours::throughput(backend, size, count).await?,
        ));
    }
    Ok(Some(Record::new(
        backend,
        Scenario::Throughput,
        size,
        median(&mut ours),
        Some(median(&mut raw)),
        raw_name(backend),
    )))
}

async fn round_trips(backend: &'static str, plan: &Plan) -> Result<[Record; 2]> {
    let size = 64;
    let mut raw = match backend {
        "quic" => raw_quic::rtt(size, plan.rtt_rounds).await?,
        "ws" => raw_ws::rtt(size, plan.rtt_rounds).await?,
        "udp" => udp::raw_rtt(size, plan.rtt_rounds).await?,
        _ => raw_stream::rtt(backend, size, plan.rtt_rounds).await?,
    };
    let mut ours = ours::rtt(backend, size, plan.rtt_rounds).await?;
    let name = raw_name(backend);
    Ok([
        Record::new(
            backend,
            Scenario::RttP50,
            size,
            median(&mut ours),
            Some(median(&mut raw)),
            name,
        ),
        Record::new(
            backend,
            Scenario::RttP99,
            size,
            percentile(&mut ours, 99.0),
            Some(percentile(&mut raw, 99.0)),
            name,
        ),
    ])
}

async fn setups(backend: &'static str, plan: &Plan) -> Result<[Record; 2]> {
    let (mut raw, name) = match backend {
        "tcp" => (
            Some(raw_stream::tcp_setup(plan.setups).await?),
            "tokio TcpStream connect",
        ),
        "quic" => (
            Some(raw_quic::setup(plan.setups).await?),
            "quinn connect + TLS 1.3 + one stream",
        ),
        "ws" => (
            Some(raw_ws::setup(plan.setups).await?),
            "tokio-tungstenite connect + upgrade",
        ),
        _ => (None, "none (no connection to set up)"),
    };
    let mut ours = ours::setup(backend, plan.setups).await?;
    let p50 = raw.as_mut().map(|r| median(r));
    let p99 = raw.as_mut().map(|r| percentile(r, 99.0));
    Ok([
        Record::new(backend, Scenario::SetupP50, 0, median(&mut ours), p50, name),
        Record::new(
            backend,
            Scenario::SetupP99,
            0,
            percentile(&mut ours, 99.0),
            p99,
            name,
        ),
    ])
}

fn idle_memory(backend: &'static str, n: usize) -> Result<Option<Record>> {
    if backend == "udp" {
        return Ok(None);
    }
    let ours = idle::in_child(backend, n)?;
    let (raw, name) = match backend {
        "tcp" => (Some(idle::in_child("raw-tcp", n)?), "tokio TcpStream pair"),
        "quic" => (
            Some(idle::in_child("raw-quic", n)?),
            "quinn connection + one stream",
        ),
        "ws" => (Some(idle::in_child("raw-ws", n)?), "tokio-tungstenite pair"),
        _ => (None, "-"),
    };
    Ok(Some(Record::new(
        backend,
        Scenario::IdleMemory,
        n,
        ours,
        raw,
        name,
    )))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(kind) = &args.idle_only {
        println!("{:.3}", idle::measure(kind, args.connections).await?);
        return Ok(());
    }
    if args.micro {
        for suite in bitcraps_transport_core::secure::CipherSuite::ALL {
            for &size in &args.sizes {
                micro::run(size, (128 * 1024 * 1024 / size).clamp(1, 100_000), suite)?;
            }
        }
        return Ok(());
    }
    // Both ends of every measurement run on the runtime's workers, not on the main thread.
    tokio::spawn(measure_all(args)).await?
}

async fn measure_all(args: Args) -> Result<()> {
    let plan = Plan::new(&args);
    for b in &args.backends {
        let Some(backend) = backend_name(b) else {
            anyhow::bail!("unknown backend {b} (tcp, udp, quic, ws, memory)");
        };
        for &size in &args.sizes {
            if let Some(r) = throughput(backend, size, &plan).await? {
                r.emit();
            }
        }
        for r in round_trips(backend, &plan).await? {
            r.emit();
        }
        for r in setups(backend, &plan).await? {
            r.emit();
        }
        if let Some(r) = idle_memory(backend, args.connections)? {
            r.emit();
        }
    }
    Ok(())
}
