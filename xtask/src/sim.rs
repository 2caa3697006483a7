//! `cargo xtask sim`: the mesh simulator (`bitcraps_mesh::sim`) from the command line.
//!
//! One run prints its report (or JSON with `--json`). `--plots DIR` instead runs 100, 300 and
//! 1,000 nodes (without and with churn) and writes `mesh-delivery.svg` and
//! `mesh-transmissions.svg` into DIR, plus the figures as `mesh-sim.json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bitcraps_mesh::sim::{self, SimConfig, SimReport};
use bitcraps_mesh::RelayPolicy;
use clap::Args;

use crate::svg;

/// Options of `cargo xtask sim`.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Nodes placed on the plane.
    #[arg(long, default_value_t = 100)]
    pub(crate) nodes: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Radio range in metres.
    #[arg(long, value_name = "M")]
    pub(crate) range: Option<f64>,
    /// Links per node at most.
    #[arg(long, value_name = "K")]
    pub(crate) link_cap: Option<usize>,
    /// Fraction of nodes leaving and rejoining per simulated minute (0.1 = 10 %).
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub(crate) churn: f64,
    /// Split the plane in two for 30 s, then heal.
    #[arg(long)]
    pub(crate) partition: bool,
    /// Relay suppression threshold: copies heard that cancel a relay (tuning).
    #[arg(long, value_name = "K")]
    pub(crate) threshold: Option<u8>,
    /// Neighbours with fewer links than this get a suppressed relay anyway (tuning).
    #[arg(long, value_name = "D")]
    pub(crate) protect_degree: Option<u8>,
    /// Relay delay range in milliseconds, `MIN-MAX` (tuning).
    #[arg(long, value_name = "MIN-MAX")]
    pub(crate) relay_delay: Option<String>,
    /// Nodes expected within radio range of a node (sets the plane's size).
    #[arg(long)]
    pub(crate) density: Option<f64>,
    /// Naive flooding instead of the suppressed relay (for comparison).
    #[arg(long)]
    pub(crate) flood: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run 100, 300 and 1,000 nodes and write SVG plots into this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) plots: Option<PathBuf>,
}

fn config(args: &SimArgs, nodes: usize, churn: f64) -> Result<SimConfig> {
    let mut c = SimConfig {
        nodes,
        seed: args.seed,
        churn,
        partition: args.partition,
        ..SimConfig::default()
    };
    if let Some(r) = args.range {
        c.range = r;
    }
    if let Some(k) = args.link_cap {
        c.link_cap = k;
    }
    if let Some(d) = args.density {
        c.density = d;
    }
    if let RelayPolicy::Suppressed {
        threshold,
        min_delay,
        max_delay,
        protect_degree,
        ..
    } = &mut c.mesh.relay
    {
        if let Some(d) = args.protect_degree {
            *protect_degree = d;
        }
        if let Some(k) = args.threshold {
            *threshold = k;
        }
        if let Some(range) = &args.relay_delay {
            let (lo, hi) = range.split_once('-').context("--relay-delay MIN-MAX")?;
            *min_delay = Duration::from_millis(lo.trim().parse()?);
            *max_delay = Duration::from_millis(hi.trim().parse()?);
        }
    }
    if args.flood {
        c.mesh.relay = RelayPolicy::Flood;
    }
    Ok(c)
}

/// `cargo xtask sim`.
pub(crate) fn run(root: &Path, args: &SimArgs) -> Result<()> {
    if let Some(dir) = &args.plots {
        return plots(&root.join(dir), args);
    }
    let started = Instant::now();
    let report = sim::run(&config(args, args.nodes, args.churn)?).context("simulation")?;
    let wall = started.elapsed();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
        println!("  wall-clock {:.1} s", wall.as_secs_f64());
    }
    Ok(())
}

fn plots(dir: &Path, args: &SimArgs) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let sizes = [100usize, 300, 1000];
    let mut runs: Vec<(usize, f64, SimReport)> = Vec::new();
    for &churn in &[0.0, 0.1] {
        for &n in &sizes {
            let started = Instant::now();
            let report = sim::run(&config(args, n, churn)?).context("simulation")?;
            println!("{report}");
            println!("  wall-clock {:.1} s\n", started.elapsed().as_secs_f64());
            runs.push((n, churn, report));
        }
    }
    let series = |churn: f64, f: &dyn Fn(&SimReport) -> f64| -> Vec<(f64, f64)> {
        runs.iter()
            .filter(|(_, c, _)| *c == churn)
            .map(|(n, _, r)| (*n as f64, f(r)))
            .collect()
    };
    let delivery = svg::line_chart(
        "Delivery ratio against N (seed ".to_string() + &args.seed.to_string() + ")",
        "nodes",
        "delivery %",
        &[
            (
                "broadcast",
                series(0.0, &|r| r.broadcast.delivery_ratio * 100.0),
            ),
            (
                "directed",
                series(0.0, &|r| r.directed.delivery_ratio * 100.0),
            ),
            (
                "directed, 10 %/min churn",
                series(0.1, &|r| r.directed.delivery_ratio * 100.0),
            ),
        ],
        Some((97.0, 100.0)),
    );
    let tx = svg::line_chart(
        "Link transmissions per broadcast against N".to_string(),
        "nodes",
        "transmissions per message",
        &[
            (
                "naive flooding",
                series(0.0, &|r| r.naive_transmissions_per_broadcast),
            ),
            (
                "mesh broadcast",
                series(0.0, &|r| r.broadcast.transmissions_per_message),
            ),
            (
                "mesh directed",
                series(0.0, &|r| r.directed.transmissions_per_message),
            ),
        ],
        None,
    );
    std::fs::write(dir.join("mesh-delivery.svg"), delivery)?;
    std::fs::write(dir.join("mesh-transmissions.svg"), tx)?;
    let json: Vec<_> = runs.iter().map(|(_, _, r)| r).collect();
    std::fs::write(
        dir.join("mesh-sim.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    println!(
        "wrote {}/mesh-delivery.svg, mesh-transmissions.svg, mesh-sim.json",
        dir.display()
    );
    Ok(())
}
