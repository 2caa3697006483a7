//! `bitcraps-node perf`: an iperf-like measurement through our transport API. Two transports
//! of one backend in this process (each with its own identity), one authenticated connection:
//! first one-way throughput for `--duration` seconds or `--bytes` bytes (messages of `--size`
//! bytes, counted when the receiver holds them), then `--rounds` round trips of one message.
//! On a terminal a live progress line shows the rate; the result is one `perf` event.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bitcraps_transport_ble::sim::{SimConfig, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::BleTransport;
use bitcraps_transport_core::{
    ChannelConfig, Connection, ConnectionLimits, Keypair, Transport, TransportAddress,
};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};
use bitcraps_transport_udp::{UdpConfig, UdpTransport, DEFAULT_MAX_PAYLOAD, MAX_PAYLOAD_LIMIT};
use bitcraps_transport_ws::{WebSocketTransport, WsConfig};
use bytes::Bytes;
use clap::{Args, ValueEnum};

use crate::output::{Event, Output};

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
    /// The backend to measure.
    #[arg(long, value_enum)]
    transport: PerfTransport,
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

/// Both ends of the measured backend; `_keep` holds what the transports run on.
struct Pair {
    client: Arc<dyn Transport>,
    server: Arc<dyn Transport>,
    listen: TransportAddress,
    _keep: (Option<MemoryNetwork>, Option<SimRadio>),
}

fn pair(kind: PerfTransport, size: usize) -> Result<Pair> {
    let channel = ChannelConfig {
        max_message_size: size.max(64 * 1024),
        ..ChannelConfig::default()
    };
    let limits = ConnectionLimits::unlimited();
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let mut keep = (None, None);
    let (client, server, listen): (Arc<dyn Transport>, Arc<dyn Transport>, &str) = match kind {
        PerfTransport::Tcp => {
            let c = TcpConfig { channel, limits };
            (
                Arc::new(TcpTransport::with_config(a, c.clone())),
                Arc::new(TcpTransport::with_config(b, c)),
                "tcp://127.0.0.1:0",
            )
        }
        PerfTransport::Udp => {
            if size > MAX_PAYLOAD_LIMIT {
                bail!("udp carries one message per datagram: at most {MAX_PAYLOAD_LIMIT} bytes");
            }
            let c = UdpConfig {
                limits,
                max_payload: size.max(DEFAULT_MAX_PAYLOAD),
                ..UdpConfig::default()
            };
            (
                Arc::new(UdpTransport::with_config(a, c.clone())),
                Arc::new(UdpTransport::with_config(b, c)),
                "udp://127.0.0.1:0",
            )
        }
        PerfTransport::Quic => {
            let c = QuicConfig {
                channel,
                limits,
                ..QuicConfig::default()
            };
            (
                Arc::new(QuicTransport::with_config(a, c.clone())?),
                Arc::new(QuicTransport::with_config(b, c)?),
                "quic://127.0.0.1:0",
            )
        }
        PerfTransport::Ws | PerfTransport::Wss => {
            let mut c = WsConfig {
                channel,
                limits,
                ..WsConfig::default()
            };
            let mut s = c.clone();
            if kind == PerfTransport::Wss {
                let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])?;
                let der = cert.cert.der().clone();
                let key = rustls_pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
                s.tls_server = Some(WsConfig::tls_server_config(vec![der.clone()], key.into())?);
                c.tls_client = Some(WsConfig::tls_client_config([der])?);
            }
            (
                Arc::new(WebSocketTransport::with_config(a, c)),
                Arc::new(WebSocketTransport::with_config(b, s)),
                if kind == PerfTransport::Wss {
                    "wss://127.0.0.1:0/perf"
                } else {
                    "ws://127.0.0.1:0/perf"
                },
            )
        }
        PerfTransport::BleSim => {
            let radio = SimRadio::new(SimConfig::default());
            let c = Arc::new(radio.add_device(SimDeviceConfig::default()));
            let s = Arc::new(radio.add_device(SimDeviceConfig::default()));
            keep.1 = Some(radio);
            (
                Arc::new(BleTransport::new(c, a)),
                Arc::new(BleTransport::new(s, b)),
                "ble://local",
            )
        }
        PerfTransport::Memory => {
            let net = MemoryNetwork::new();
            let t = |k| {
                Arc::new(MemoryTransport::with_config(
                    &net,
                    k,
                    channel.clone(),
                    limits.clone(),
                ))
            };
            let (c, s) = (t(a), t(b));
            keep.0 = Some(net);
            (c, s, "memory://0")
        }
    };
    Ok(Pair {
        client,
        server,
        listen: listen.parse()?,
        _keep: keep,
    })
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
    if args.size == 0 {
        bail!("--size must be at least 1");
    }
    let limit = match (args.bytes, args.duration) {
        (Some(b), _) => Limit::Bytes(b.max(1)),
        (None, Some(s)) if s.is_finite() && s > 0.0 => Limit::Time(Duration::from_secs_f64(s)),
        (None, Some(s)) => bail!("--duration must be a positive number of seconds, not {s}"),
        (None, None) => Limit::Time(Duration::from_secs(3)),
    };
    let name = args.transport.name();
    let p = pair(args.transport, args.size)?;
    let mut listener = p.server.listen(&p.listen).await?;
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        p.client.dial(&addr, Some(p.server.local_peer_id())),
        listener.accept_connection()
    );
    let (mut client, server) = (dialed?, accepted?);
    let received = Arc::new(AtomicU64::new(0));
    let bar = progress(out, name, args.size, received.clone());
    let result = throughput(&client, server, args.size, limit, received).await;
    if let Some(bar) = bar {
        bar.abort();
        eprintln!();
    }
    let (moved, server) = result?;
    let mut rtt = round_trips(&mut client, server, args.size, args.rounds).await?;
    client.close("perf done").await.ok();
    let secs = moved.elapsed.as_secs_f64().max(1e-9);
    let bytes = moved.delivered * args.size as u64;
    out.emit(&Event::Perf {
        transport: name,
        size: args.size,
        sent: moved.sent,
        delivered: moved.delivered,
        bytes,
        seconds: secs,
        megabytes_per_second: bytes as f64 / secs / 1e6,
        messages_per_second: moved.delivered as f64 / secs,
        rounds: rtt.len(),
        rtt_p50_us: percentile(&mut rtt, 50.0),
        rtt_p99_us: percentile(&mut rtt, 99.0),
    });
    Ok(())
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
