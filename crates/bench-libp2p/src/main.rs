//! `bitcraps-bench-libp2p`: the bitcraps-bench workloads on rust-libp2p, so the report can
//! put a third column beside ours and the raw library: one-way throughput of u32-length-framed
//! messages over one libp2p-stream stream (a 256 KiB buffered writer, as the raw baselines),
//! 64 B round trips, connection setup (median and p99, as many setups as ours) and idle memory
//! per connection ([`setup`]), over TCP+Noise+yamux and over QUIC. Prints one JSON record per
//! line: `{"backend", "scenario", "size", "value"}` with the units and sizes of bitcraps-bench.

mod setup;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};

const PROTOCOL: StreamProtocol = StreamProtocol::new("/bitcraps-bench/1");
const BUFFER: usize = 256 * 1024;
/// The backends and their listen addresses.
const BACKENDS: [(&str, &str); 2] = [
    ("tcp", "/ip4/127.0.0.1/tcp/0"),
    ("quic", "/ip4/127.0.0.1/udp/0/quic-v1"),
];

fn swarm() -> Result<Swarm<libp2p_stream::Behaviour>> {
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_quic()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// A connected pair: the client's control, the server's incoming streams, the server id.
async fn pair(
    listen: &str,
) -> Result<(
    libp2p_stream::Control,
    libp2p_stream::IncomingStreams,
    PeerId,
)> {
    let mut server = swarm()?;
    let mut client = swarm()?;
    let incoming = server.behaviour().new_control().accept(PROTOCOL)?;
    server.listen_on(listen.parse()?)?;
    let addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let server_id = *server.local_peer_id();
    tokio::spawn(async move {
        loop {
            server.select_next_some().await;
        }
    });
    client.dial(addr.with(Protocol::P2p(server_id)))?;
    loop {
        match client.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => break,
            SwarmEvent::OutgoingConnectionError { error, .. } => bail!("dial: {error}"),
            _ => {}
        }
    }
    let control = client.behaviour().new_control();
    tokio::spawn(async move {
        loop {
            client.select_next_some().await;
        }
    });
    Ok((control, incoming, server_id))
}

async fn throughput(listen: &str, size: usize, count: usize) -> Result<Duration> {
    let (mut control, mut incoming, server) = pair(listen).await?;
    let receive = tokio::spawn(async move {
        let (_, mut stream) = incoming.next().await.context("no stream")?;
        let mut header = [0u8; 4];
        let mut body = Vec::new();
        for _ in 0..count {
            stream.read_exact(&mut header).await?;
            body.resize(u32::from_be_bytes(header) as usize, 0);
            stream.read_exact(&mut body).await?;
        }
        anyhow::Ok(Instant::now())
    });
    let stream = control.open_stream(server, PROTOCOL).await?;
    let mut w = futures::io::BufWriter::with_capacity(BUFFER, stream);
    let payload = vec![0xA5u8; size];
    let header = (size as u32).to_be_bytes();
    let start = Instant::now();
    for _ in 0..count {
        w.write_all(&header).await?;
        w.write_all(&payload).await?;
    }
    w.flush().await?;
    let end = receive.await??;
    Ok(end - start)
}

async fn rtt(listen: &str, size: usize, rounds: usize) -> Result<Vec<f64>> {
    let (mut control, mut incoming, server) = pair(listen).await?;
    tokio::spawn(async move {
        let (_, mut stream) = incoming.next().await.context("no stream")?;
        let mut buf = vec![0u8; 4 + size];
        while stream.read_exact(&mut buf).await.is_ok() {
            stream.write_all(&buf).await?;
            stream.flush().await?;
        }
        anyhow::Ok(())
    });
    let mut stream = control.open_stream(server, PROTOCOL).await?;
    let mut frame = (size as u32).to_be_bytes().to_vec();
    frame.resize(4 + size, 0x5A);
    let mut back = vec![0u8; 4 + size];
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        stream.write_all(&frame).await?;
        stream.flush().await?;
        stream.read_exact(&mut back).await?;
        out.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(out)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn emit(backend: &str, scenario: &str, size: usize, value: f64) {
    println!(
        "{}",
        serde_json::json!({"backend": backend, "scenario": scenario, "size": size, "value": value})
    );
    eprintln!("libp2p {backend} {scenario} {size} B: {value:.3}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    // bitcraps-bench's default number of idle connections.
    let connections: usize = value_of("--connections").map_or(Ok(1000), |n| n.parse())?;
    if let Some(backend) = value_of("--idle-only") {
        let listen = BACKENDS
            .iter()
            .find(|(b, _)| b == backend)
            .context("unknown backend")?
            .1;
        println!("{:.3}", setup::idle_memory(listen, connections).await?);
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    // The workloads of bitcraps-bench (its Plan), setups included.
    let (bytes, max_messages, repeat, rounds, setups) = if quick {
        (128usize << 20, 1_000_000usize, 3, 5_000, 200)
    } else {
        (256 << 20, 2_000_000, 3, 10_000, 500)
    };
    for (backend, listen) in BACKENDS {
        for size in [64usize, 1024, 65536] {
            let count = (bytes / size).clamp(1, max_messages);
            let mut runs = Vec::new();
            for _ in 0..repeat {
                let t = throughput(listen, size, count).await?;
                runs.push((size * count) as f64 / t.as_secs_f64() / 1e9);
            }
            emit(backend, "throughput", size, percentile(&mut runs, 50.0));
        }
        let mut r = rtt(listen, 64, rounds).await?;
        emit(backend, "rtt_p50", 64, percentile(&mut r, 50.0));
        emit(backend, "rtt_p99", 64, percentile(&mut r, 99.0));
        let mut s = setup::setup(listen, setups).await?;
        emit(backend, "setup_p50", 0, percentile(&mut s, 50.0));
        emit(backend, "setup_p99", 0, percentile(&mut s, 99.0));
        // Memory is an extra: a failure costs its row only.
        match setup::idle_in_child(backend, connections) {
            Ok(idle) => emit(backend, "idle_memory", connections, idle),
            Err(e) => eprintln!("libp2p {backend} idle_memory failed: {e:#}"),
        }
    }
    Ok(())
}
