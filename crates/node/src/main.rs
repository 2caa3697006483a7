//! `bitcraps-node`: listen, send and demo over the bitcraps transports. `listen` and `send`
//! run on the `TransportCoordinator` (routes, failover, acknowledged delivery); so does `demo`
//! (four players over mixed transports, a failover and a switch-back).
//!
//! Events go to stdout (readable lines, or one JSON object per line with `--json`); logs go to
//! stderr, filtered by `RUST_LOG` (default `warn`).

mod backends;
mod demo;
mod discover;
mod listen;
mod mesh;
mod metrics;
mod node;
mod output;
mod perf;
mod send;
mod tls;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use bitcraps_transport_core::{ChannelConfig, ConnectionLimits, Keypair, PeerId, TransportAddress};
use clap::{Args, Parser, Subcommand};

use output::{Event, Output};
use tls::TlsArgs;

/// A BitCraps transport node: listen for peers, send to one, or run an in-process demo.
#[derive(Debug, Parser)]
#[command(name = "bitcraps-node", version, about)]
struct Cli {
    /// Print every event as one JSON object per line on stdout.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Listen on one or more addresses (tcp://, quic://, udp://, ws://, wss:// HOST:PORT; port
    /// 0 picks one), one node reachable over all of them, until Ctrl-C or SIGTERM.
    #[command(after_help = listen::CONTROL_HELP)]
    Listen(ListenArgs),
    /// Connect to a peer over one or more routes (failing over between them), check its
    /// identity, send messages, wait until all are acknowledged, close and report throughput.
    Send(SendArgs),
    /// Run a dice table of four in-process players over BLE (simulated), TCP, WebSocket and
    /// QUIC, who find it by mDNS discovery on loopback, with a failover and switch-back, then
    /// print stats (a live view when stdout is a terminal).
    Demo,
    /// Measure one backend like iperf3 (in process, or a remote `listen` with --to):
    /// one-way throughput, messages/s and round trips.
    Perf(perf::PerfArgs),
}

/// Options of `listen`.
#[derive(Debug, Args)]
struct ListenArgs {
    /// Addresses to listen on, e.g. tcp://127.0.0.1:0 quic://127.0.0.1:0 ws://127.0.0.1:0/bitcraps.
    #[arg(required = true, value_name = "ADDR")]
    addrs: Vec<TransportAddress>,
    /// Key file (created with mode 0600 if missing); a fresh key if not given.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Send every received message back to its sender.
    #[arg(long)]
    echo: bool,
    /// Handshake timeout in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    handshake_timeout_ms: u64,
    /// Maximum established connections.
    #[arg(long, value_name = "N", default_value_t = ConnectionLimits::default().max_total_connections)]
    max_connections: usize,
    /// New inbound handshakes allowed per source IP per minute.
    #[arg(long, value_name = "N", default_value_t = ConnectionLimits::default().max_new_connections_per_minute)]
    max_new_per_minute: u32,
    /// How long a peer whose last connection ended is kept (with its dedup state) so it can
    /// fail over to another address, before `disconnected` is reported, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 15_000)]
    reconnect_grace_ms: u64,
    /// Serve the coordinator's metrics in the Prometheus text format at
    /// http://HOST:PORT/metrics (port 0 picks one; the `metrics` event says which).
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    mesh: mesh::MeshArgs,
    #[command(flatten)]
    discovery: discover::DiscoverArgs,
}

/// Options of `send`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("payload").required(true).args(["message", "count"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["addrs", "ticket", "discover"])))]
struct SendArgs {
    /// The peer's addresses (its routes), most preferred first, e.g. tcp://127.0.0.1:8765
    /// (with --peer), or give a --ticket instead.
    #[arg(value_name = "ADDR", requires = "peer")]
    addrs: Vec<TransportAddress>,
    /// The peer id (64 hex digits) the remote must prove (with --discover: the one to look
    /// for, instead of the first node heard).
    #[arg(long, value_name = "ID", conflicts_with = "ticket")]
    peer: Option<PeerId>,
    /// The peer's ticket, as `listen` prints it (its peer id and routes in one line).
    #[arg(long, value_name = "TICKET", conflicts_with = "addrs")]
    ticket: Option<bitcraps_transport_core::Ticket>,
    /// Send this one message.
    #[arg(long, value_name = "TEXT", conflicts_with = "count")]
    message: Option<String>,
    /// Send N messages, each beginning with its index ("0 ", "1 ", ...).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Size of each of the --count messages, in bytes.
    #[arg(
        long,
        value_name = "BYTES",
        conflicts_with = "message",
        default_value_t = 64
    )]
    size: usize,
    /// Pace the --count messages: one every MS milliseconds.
    #[arg(long, value_name = "MS", conflicts_with = "message")]
    interval: Option<u64>,
    /// Key file (created with mode 0600 if missing); a fresh key if not given.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Dial and handshake timeout, and how long the final flush may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
    /// With --discover: how long to look for a node, in milliseconds (default 10000).
    #[arg(long, value_name = "MS")]
    wait_ms: Option<u64>,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    mesh: mesh::MeshArgs,
    #[command(flatten)]
    discovery: discover::DiscoverArgs,
}

impl SendArgs {
    /// The peer and its routes, from the ticket or from the addresses and `--peer` (with
    /// `--discover` they are found at run time instead).
    fn target(&self) -> Result<(PeerId, Vec<TransportAddress>)> {
        match (&self.ticket, self.peer) {
            (Some(t), _) => Ok((t.peer(), t.routes().to_vec())),
            (None, Some(peer)) if !self.addrs.is_empty() => Ok((peer, self.addrs.clone())),
            _ => {
                anyhow::bail!("give the peer's addresses with --peer, its --ticket, or --discover")
            }
        }
    }
}

/// The keypair from `--key FILE` (loaded, or generated and saved 0600), or a fresh one.
fn load_key(path: Option<&Path>) -> Result<Keypair> {
    match path {
        Some(p) => {
            Keypair::load_or_generate(p).with_context(|| format!("key file {}", p.display()))
        }
        None => Ok(Keypair::generate()),
    }
}

/// Channel settings with the given handshake timeout.
fn channel_config(handshake_timeout_ms: u64) -> ChannelConfig {
    ChannelConfig {
        handshake_timeout: Duration::from_millis(handshake_timeout_ms.max(1)),
        ..ChannelConfig::default()
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A failure that was already reported as an event; only the exit code is left to set.
#[derive(Debug)]
struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure already reported")
    }
}

impl std::error::Error for Reported {}

fn report(out: Output, error: &anyhow::Error) {
    if error.downcast_ref::<Reported>().is_some() {
        return;
    }
    let core = error.downcast_ref::<bitcraps_transport_core::Error>();
    let coordinator = error.downcast_ref::<bitcraps_coordinator::CoordinatorError>();
    if out.is_json() {
        let event = match (core, coordinator) {
            (Some(e), _) => Event::error(None, None, e),
            (None, Some(e)) => Event::Error {
                peer_id: None,
                remote: None,
                error: format!("{error:#}"),
                kind: output::coordinator_error_kind(e),
                detail: None,
            },
            (None, None) => Event::Error {
                peer_id: None,
                remote: None,
                error: format!("{error:#}"),
                kind: "Other",
                detail: None,
            },
        };
        out.emit(&event);
    }
    match (core, coordinator) {
        (Some(e), _) => eprintln!("error: {error:#} ({})", output::error_kind(e).0),
        (None, Some(e)) => eprintln!("error: {error:#} ({})", output::coordinator_error_kind(e)),
        (None, None) => eprintln!("error: {error:#}"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    let out = Output::new(cli.json);
    let result = match cli.command {
        Command::Listen(args) => listen::run(args, out).await,
        Command::Send(args) => send::run(args, out).await,
        Command::Demo => demo::run(out).await,
        Command::Perf(args) => perf::run(args, out).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(out, &e);
            ExitCode::FAILURE
        }
    }
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
    fn send_needs_a_payload_and_refuses_both() {
        let peer = Keypair::generate().peer_id().to_string();
        let base = [
            "bitcraps-node",
            "send",
            "tcp://127.0.0.1:1",
            "--peer",
            &peer,
        ];
        assert!(Cli::try_parse_from(base).is_err());
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            Cli::try_parse_from(v)
        };
        assert!(with(&["--message", "hi"]).is_ok());
        assert!(with(&["--count", "3", "--size", "10"]).is_ok());
        assert!(with(&["--message", "hi", "--count", "3"]).is_err());
        assert!(with(&["--message", "hi", "--size", "3"]).is_err());
        assert!(with(&["--message", "hi", "--interval", "5"]).is_err());
        assert!(with(&["--count", "3", "--interval", "5"]).is_ok());
    }

    #[test]
    fn send_takes_several_routes_and_tls_options() {
        let peer = Keypair::generate().peer_id().to_string();
        let cli = Cli::try_parse_from([
            "bitcraps-node",
            "send",
            "tcp://127.0.0.1:1",
            "wss://localhost:2/bitcraps",
            "--peer",
            &peer,
            "--count",
            "2",
            "--tls-ca",
            "ca.pem",
        ])
        .unwrap();
        let Command::Send(args) = cli.command else {
            panic!("not send")
        };
        assert_eq!(args.addrs.len(), 2);
        assert_eq!(args.addrs[1].scheme(), "wss");
        assert!(args.tls.tls_ca.is_some());
        // A certificate needs its key.
        let lonely = [
            "bitcraps-node",
            "listen",
            "wss://127.0.0.1:0/x",
            "--tls-cert",
            "c.pem",
        ];
        assert!(Cli::try_parse_from(lonely).is_err());
    }

    #[test]
    fn send_takes_discover_instead_of_a_target() {
        let parse = |args: &[&str]| {
            let mut v = vec!["bitcraps-node", "send"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v)
        };
        let cli = parse(&["--discover", "--message", "hi", "--wait-ms", "500"]).unwrap();
        let Command::Send(args) = cli.command else {
            panic!("not send")
        };
        assert!(args.discovery.discover && args.peer.is_none());
        assert_eq!(args.wait_ms, Some(500));
        // No target at all, or a wait without --discover, is a usage error.
        assert!(parse(&["--message", "hi"]).is_err());
        let peer = Keypair::generate().peer_id().to_string();
        let typed = ["tcp://127.0.0.1:1", "--peer", &peer, "--message", "hi"];
        assert!(parse(&typed).is_ok());
        assert!(parse(&["--discover", "--peer", &peer, "--count", "2"]).is_ok());
    }

    #[test]
    fn listen_parses_addresses_and_json_anywhere() {
        let cli = Cli::try_parse_from([
            "bitcraps-node",
            "listen",
            "tcp://127.0.0.1:0",
            "tcp://[::1]:0",
            "--json",
            "--handshake-timeout-ms",
            "500",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Listen(args) = cli.command else {
            panic!("not listen")
        };
        assert_eq!(args.addrs.len(), 2);
        assert_eq!(args.handshake_timeout_ms, 500);
        assert!(Cli::try_parse_from(["bitcraps-node", "listen"]).is_err());
        assert!(Cli::try_parse_from(["bitcraps-node", "listen", "bogus"]).is_err());
    }
}
