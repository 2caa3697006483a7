//! Throughput of `QuicTransport` against raw quinn in the same run: 64 KiB and 1 KiB
//! messages, one connection over loopback, sender and receiver in this process.
//!
//! The raw baseline is a bare quinn bidirectional stream with the same framing (`u32`
//! big-endian length, then the payload; one `write_all_chunks` per message, `read_exact` for
//! the header and the payload), on the same rustls/ring TLS 1.3 stack. Each case runs three
//! times, alternating raw and transport, and the best run of each is reported.
//!
//! `cargo run --release -p bitcraps-transport-quic --example quic_throughput [-- divisor]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bitcraps_transport_core::{
    Bytes, ChannelConfig, ConnectionLimits, Keypair, SharedLimiter, Transport,
};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};

const ROUNDS: usize = 3;

struct Case {
    size: usize,
    count: usize,
}

struct Run {
    elapsed: Duration,
    bytes: usize,
    count: usize,
}

impl Run {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
    fn msgs_per_s(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

async fn transport_run(case: &Case) -> Result<Run> {
    let config = QuicConfig {
        channel: ChannelConfig::default(),
        limits: ConnectionLimits::unlimited(),
        ..QuicConfig::default()
    };
    let server = QuicTransport::with_limiter(
        Keypair::generate(),
        config.clone(),
        SharedLimiter::unlimited(),
    )?;
    let client =
        QuicTransport::with_limiter(Keypair::generate(), config, SharedLimiter::unlimited())?;
    let mut listener = server.listen(&"quic://127.0.0.1:0".parse()?).await?;
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        client.dial(&addr, Some(server.local_peer_id())),
        listener.accept_connection()
    );
    let (dialed, mut accepted) = (dialed?, accepted?);
    let payload = Bytes::from(vec![0x5a; case.size]);
    let count = case.count;
    let start = Instant::now();
    let sender = dialed.sender();
    let send = tokio::spawn(async move {
        for _ in 0..count {
            sender.send(payload.clone()).await?;
        }
        anyhow::Ok(())
    });
    let mut bytes = 0;
    for _ in 0..count {
        let m = accepted.recv().await?.context("closed early")?;
        bytes += m.len();
    }
    let elapsed = start.elapsed();
    send.await??;
    dialed.close("done").await?;
    Ok(Run {
        elapsed,
        bytes,
        count,
    })
}

async fn raw_run(case: &Case) -> Result<Run> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
    let server_config = quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key.into())?;
    let server = quinn::Endpoint::server(server_config, "127.0.0.1:0".parse()?)?;
    let server_addr = server.local_addr()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der)?;
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    client.set_default_client_config(quinn::ClientConfig::with_root_certificates(Arc::new(
        roots,
    ))?);
    let accept = async {
        let conn = server.accept().await.context("no incoming")?.await?;
        let (_send, recv) = conn.accept_bi().await?;
        anyhow::Ok((conn, recv))
    };
    let dial = async {
        let conn = client.connect(server_addr, "localhost")?.await?;
        let (mut send, recv) = conn.open_bi().await?;
        // Announce the stream (the peer sees it only once data arrives).
        send.write_all(&0u32.to_be_bytes()).await?;
        anyhow::Ok((conn, send, recv))
    };
    let (accepted, dialed) = tokio::join!(accept, dial);
    let ((_server_conn, mut recv), (client_conn, mut send, _client_recv)) = (accepted?, dialed?);
    let mut announce = [0u8; 4];
    recv.read_exact(&mut announce).await?;

    let payload = Bytes::from(vec![0x5a; case.size]);
    let count = case.count;
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        for _ in 0..count {
            let header = Bytes::copy_from_slice(&(payload.len() as u32).to_be_bytes());
            send.write_all_chunks(&mut [header, payload.clone()])
                .await?;
        }
        send.finish()?;
        anyhow::Ok(send)
    });
    let mut bytes = 0;
    for _ in 0..count {
        let mut header = [0u8; 4];
        recv.read_exact(&mut header).await?;
        let len = u32::from_be_bytes(header) as usize;
        anyhow::ensure!(len <= 1 << 20, "frame too large");
        let mut body = vec![0u8; len];
        recv.read_exact(&mut body).await?;
        bytes += Bytes::from(body).len();
    }
    let elapsed = start.elapsed();
    let _send = sender.await??;
    client_conn.close(0u32.into(), b"done");
    Ok(Run {
        elapsed,
        bytes,
        count,
    })
}

fn best(runs: &[Run]) -> &Run {
    runs.iter()
        .min_by(|a, b| a.elapsed.cmp(&b.elapsed))
        .expect("at least one run")
}

#[tokio::main]
async fn main() -> Result<()> {
    // An optional divisor of the message counts, for a quick smoke run (e.g. `-- 50`).
    let divisor: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let cases = [
        Case {
            size: 64 * 1024,
            count: 8 * 1024 / divisor,
        },
        Case {
            size: 1024,
            count: 200_000 / divisor,
        },
    ];
    println!("QuicTransport vs raw quinn, loopback, best of {ROUNDS} runs each");
    for case in &cases {
        let mut raw = Vec::new();
        let mut ours = Vec::new();
        for _ in 0..ROUNDS {
            raw.push(raw_run(case).await?);
            ours.push(transport_run(case).await?);
        }
        let (r, o) = (best(&raw), best(&ours));
        println!(
            "{:>6} B x {:>7}: raw quinn {:>8.1} MB/s ({:>9.0} msg/s) | QuicTransport {:>8.1} MB/s ({:>9.0} msg/s) | ratio {:.2}",
            case.size,
            case.count,
            r.mb_per_s(),
            r.msgs_per_s(),
            o.mb_per_s(),
            o.msgs_per_s(),
            o.mb_per_s() / r.mb_per_s(),
        );
    }
    Ok(())
}
