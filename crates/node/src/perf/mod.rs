//! `bitcraps-node perf`: an iperf-like measurement through our transport API. Two transports
//! of one backend in this process (each with its own identity), one authenticated connection:
//! first one-way throughput for `--duration` seconds or `--bytes` bytes (messages of `--size`
//! bytes, counted when the receiver holds them), then `--rounds` round trips of one message.
//! On a terminal a live progress line shows the rate; the result is one `perf` event.
//! With `--to` the same phases run against a remote `listen` instead (see [`remote`]).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bitcraps_transport_core::{Connection, PeerId};
use bytes::Bytes;
use clap::{Args, ValueEnum};

use crate::output::{Event, Output};

mod pair;
mod remote;
use pair::pair;

/// A datagram receiver gives up waiting for stragglers after this long without a delivery.
const QUIET: Duration = Duration::from_secs(1);

/// The backends `perf` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PerfTransport {
    /// TCP.
    Tcp,
    /// UDP (one message per datagram; lost messages are counted, not retried).
    Udp,
    /// QUIC.
    Quic,
    /// WebSocket over plain TCP.
    Ws,
    /// WebSocket over TLS (a self-signed certificate made for this run).
    Wss,
    /// The simulated BLE radio.
    BleSim,
    /// The in-process memory backend.
    Memory,
}

impl PerfTransport {
    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Quic => "quic",
            Self::Ws => "ws",
            Self::Wss => "wss",
            Self::BleSim => "ble-sim",
            Self::Memory => "memory",
        }
    }
}

/// Options of `perf`.
#[derive(Debug, Args)]
pub(crate) struct PerfArgs {
    /// The backend to measure in process.
    #[arg(
        long,
        value_enum,
        required_unless_present = "to",
        conflicts_with = "to"
    )]
    transport: Option<PerfTransport>,
    /// Measure against a remote `bitcraps-node listen` (run it with --echo for round trips):
    /// its ticket, or one of its addresses with --peer.
    #[arg(long, value_name = "TICKET|ADDR")]
    to: Option<String>,
    /// The remote's peer id, when --to is an address.
    #[arg(long, value_name = "ID", requires = "to")]
    peer: Option<PeerId>,
    /// Bytes per message.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    size: usize,
    /// Send for this many seconds (default 3 unless --bytes is given).
    #[arg(long, value_name = "S", conflicts_with = "bytes")]
    duration: Option<f64>,
    /// Send this many payload bytes instead of for a duration.
    #[arg(long, value_name = "N")]
    bytes: Option<u64>,
    /// Round trips measured after the throughput phase.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    rounds: usize,
}

/// What a whole run measured.
struct Measured {
    sent: u64,
    delivered: u64,
    elapsed: Duration,
    /// Round trips in microseconds; `None` when they could not be measured (no echo).
    rtt: Option<Vec<f64>>,
    /// The remote's peer id (`--to`).
    remote: Option<String>,
}

/// What the throughput phase measured.
struct Moved {
    sent: u64,
    delivered: u64,
    elapsed: Duration,
}

/// A live progress line on stderr, only when stdout is a terminal and not in `--json` mode.
fn progress(
    out: Output,
    name: &str,
    size: usize,
    received: Arc<AtomicU64>,
) -> Option<tokio::task::JoinHandle<()>> {
    if out.is_json() || !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let name = name.to_string();
    Some(tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        // The first tick is immediate: skip it, a rate over no time means nothing.
        tick.tick().await;
        let (mut last, mut at) = (0u64, Instant::now());
        loop {
            tick.tick().await;
            let now = received.load(Ordering::Relaxed);
            let rate = (now - last) as f64 * size as f64 / at.elapsed().as_secs_f64() / 1e6;
            bar.set_message(format!(
                "{name} {size} B: {now} messages, {:.1} MB total, {rate:.1} MB/s now, {:.1} MB/s average",
                now as f64 * size as f64 / 1e6,
                now as f64 * size as f64 / started.elapsed().as_secs_f64() / 1e6
            ));
            bar.tick();
            (last, at) = (now, Instant::now());
        }
    }))
}

async fn throughput(
    sender: &Connection,
    mut receiver: Connection,
    size: usize,
    limit: Limit,
    received: Arc<AtomicU64>,
) -> Result<(Moved, Connection)> {
    let total = match limit {
        Limit::Bytes(b) => Some(b.div_ceil(size.max(1) as u64)),
        Limit::Time(_) => None,
    };
    let done = Arc::new(AtomicU64::new(u64::MAX));
    let sent_total = done.clone();
    let counter = received.clone();
    let receive = tokio::spawn(async move {
        let mut got = 0u64;
        let mut last = Instant::now();
        loop {
            if got >= sent_total.load(Ordering::Acquire) {
                break;
            }
            match tokio::time::timeout(QUIET, receiver.recv()).await {
                Ok(Ok(Some(_))) => {
                    got += 1;
                    last = Instant::now();
                    counter.store(got, Ordering::Relaxed);
                }
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(anyhow::Error::new(e)),
                // Nothing for a while: done if the sender finished (the rest was lost).
                Err(_) if sent_total.load(Ordering::Acquire) != u64::MAX => break,
                Err(_) => {}
            }
        }
        Ok((got, last, receiver))
    });
    let payload = Bytes::from(vec![0xA5u8; size]);
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        let more = match (limit, total) {
            (_, Some(t)) => sent < t,
            (Limit::Time(d), None) => start.elapsed() < d,
            (Limit::Bytes(_), None) => false,
        };
        if !more {
            break;
        }
        sender.send(payload.clone()).await?;
        sent += 1;
    }
    done.store(sent, Ordering::Release);
    let (delivered, last, receiver) = receive.await.context("the receiver task")??;
    Ok((
        Moved {
            sent,
            delivered,
            elapsed: last.saturating_duration_since(start),
        },
        receiver,
    ))
}

async fn round_trips(
    client: &mut Connection,
    server: Connection,
    size: usize,
    rounds: usize,
) -> Result<Vec<f64>> {
    let mut server = server;
    let echo = tokio::spawn(async move {
        while let Ok(Some(m)) = server.recv().await {
            if server.send(m).await.is_err() {
                break;
            }
        }
        server
    });
    let payload = Bytes::from(vec![0x5Au8; size]);
    let mut out = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let start = Instant::now();
        client.send(payload.clone()).await?;
        match tokio::time::timeout(QUIET * 5, client.recv()).await {
            Ok(r) => r?.context("the echo side closed")?,
            Err(_) => bail!("round trip {i} got no answer (lost datagram?)"),
        };
        out.push(start.elapsed().as_secs_f64() * 1e6);
    }
    echo.abort();
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
enum Limit {
    Time(Duration),
    Bytes(u64),
}

/// The `p`th percentile (nearest rank) of `v`, sorted in place; 0 when empty.
fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Runs `perf`.
pub(crate) async fn run(args: PerfArgs, out: Output) -> Result<()> {
    // On the runtime's workers, not on the main thread that `block_on` parks: a wake-up of
    // the main thread goes through a condition variable and would be measured as latency.
    tokio::spawn(measure(args, out))
        .await
        .context("the perf task")?
}

async fn measure(args: PerfArgs, out: Output) -> Result<()> {
    if args.size == 0 {
        bail!("--size must be at least 1");
    }
    let limit = match (args.bytes, args.duration) {
        (Some(b), _) => Limit::Bytes(b.max(1)),
        (None, Some(s)) if s.is_finite() && s > 0.0 => Limit::Time(Duration::from_secs_f64(s)),
        (None, Some(s)) => bail!("--duration must be a positive number of seconds, not {s}"),
        (None, None) => Limit::Time(Duration::from_secs(3)),
    };
    let (measured, name) = match (&args.to, args.transport) {
        (Some(to), _) => remote::run(to, args.peer, args.size, limit, args.rounds).await?,
        (None, Some(kind)) => (
            in_process(kind, args.size, limit, args.rounds, out).await?,
            kind.name().to_string(),
        ),
        (None, None) => bail!("give --transport KIND or --to TARGET"),
    };
    let secs = measured.elapsed.as_secs_f64().max(1e-9);
    let bytes = measured.delivered * args.size as u64;
    let mut rtt = measured.rtt;
    out.emit(&Event::Perf {
        transport: name,
        remote: measured.remote,
        size: args.size,
        sent: measured.sent,
        delivered: measured.delivered,
        bytes,
        seconds: secs,
        megabytes_per_second: bytes as f64 / secs / 1e6,
        messages_per_second: measured.delivered as f64 / secs,
        rounds: rtt.as_ref().map_or(0, Vec::len),
        rtt_p50_us: rtt.as_mut().map(|r| percentile(r, 50.0)),
        rtt_p99_us: rtt.as_mut().map(|r| percentile(r, 99.0)),
    });
    Ok(())
}

/// Both phases between two transports of `kind` in this process.
async fn in_process(
    kind: PerfTransport,
    size: usize,
    limit: Limit,
    rounds: usize,
    out: Output,
) -> Result<Measured> {
    let name = kind.name();
    let p = pair(kind, size)?;
    let mut listener = p.server.listen(&p.listen).await?;
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        p.client.dial(&addr, Some(p.server.local_peer_id())),
        listener.accept_connection()
    );
    let (mut client, server) = (dialed?, accepted?);
    let received = Arc::new(AtomicU64::new(0));
    let bar = progress(out, name, size, received.clone());
    let result = throughput(&client, server, size, limit, received).await;
    if let Some(bar) = bar {
        bar.abort();
        eprintln!();
    }
    let (moved, server) = result?;
    let rtt = round_trips(&mut client, server, size, rounds).await?;
    client.close("perf done").await.ok();
    Ok(Measured {
        sent: moved.sent,
        delivered: moved.delivered,
        elapsed: moved.elapsed,
        rtt: Some(rtt),
        remote: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let mut v: Vec<f64> = (1..=200).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 100.0);
        assert_eq!(percentile(&mut v, 99.0), 198.0);
        assert_eq!(percentile(&mut [], 99.0), 0.0);
    }
}
