//! Profiling driver (not a benchmark): `quic_prof <setup|setup-keep|rtt|tput> <n> [size]`
//! through the QUIC backend, or `raw-setup <n>` / `raw-setup-mutual <n>` (the client presents a
//! certificate too) through bare quinn, for callgrind.

use std::sync::Arc;
use std::time::Instant;

use bitcraps_transport_core::{ChannelConfig, ConnectionLimits, Keypair, Transport};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};
use bytes::Bytes;

fn transport() -> QuicTransport {
    QuicTransport::with_config(
        Keypair::generate(),
        QuicConfig {
            channel: ChannelConfig {
                max_message_size: 1 << 20,
                ..ChannelConfig::default()
            },
            limits: ConnectionLimits::unlimited(),
            ..QuicConfig::default()
        },
    )
    .unwrap()
}

/// The quinn settings our backend uses (`QuicConfig::default()`), for the raw side.
fn raw_transport(accept_streams: u32) -> Arc<quinn::TransportConfig> {
    QuicConfig::default().quinn_transport(accept_streams)
}

/// Bare quinn setups (with our backend's transport settings); `mutual`: the client presents a certificate too (webpki-verified).
async fn raw_setup(n: usize, mutual: bool) -> anyhow::Result<()> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der.clone())?;
    let roots = Arc::new(roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = if mutual {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()?;
        let tls = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert_der.clone()], key.clone_key().into())?;
        quinn::ServerConfig::with_crypto(Arc::new(
            quinn::crypto::rustls::QuicServerConfig::try_from(tls)?,
        ))
    } else {
        quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key.clone_key().into())?
    };
    server_config.transport_config(raw_transport(1));
    let server = quinn::Endpoint::server(server_config, "127.0.0.1:0".parse()?)?;
    let addr = server.local_addr()?;
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    let mut client_config = if mutual {
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert_der], key.into())?;
        quinn::ClientConfig::new(Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(
            tls,
        )?))
    } else {
        quinn::ClientConfig::with_root_certificates(roots)?
    };
    client_config.transport_config(raw_transport(0));
    client.set_default_client_config(client_config);
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let accept = async {
            let conn = server.accept().await.unwrap().await?;
            let (mut send, mut recv) = conn.accept_bi().await?;
            let mut b = [0u8; 1];
            recv.read_exact(&mut b).await?;
            send.write_all(&b).await?;
            anyhow::Ok((conn, send, recv))
        };
        let dial = async {
            let conn = client.connect(addr, "localhost")?.await?;
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&[1]).await?;
            let mut b = [0u8; 1];
            recv.read_exact(&mut b).await?;
            anyhow::Ok((conn, send, recv))
        };
        let (a, d) = tokio::join!(accept, dial);
        let (_a, d) = (a?, d?);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        d.0.close(0u32.into(), b"done");
    }
    report(
        if mutual {
            "raw setup, mutual"
        } else {
            "raw setup"
        },
        times,
    );
    Ok(())
}

fn report(what: &str, mut t: Vec<f64>) {
    t.sort_by(f64::total_cmp);
    eprintln!("{what}: median {:.1} us over {}", t[t.len() / 2], t.len());
}

async fn run(mode: String, n: usize, size: usize) -> anyhow::Result<()> {
    if mode == "raw-setup" || mode == "raw-setup-mutual" {
        return raw_setup(n, mode == "raw-setup-mutual").await;
    }
    let client = transport();
    let server = transport();
    let mut listener = server.listen(&"quic://127.0.0.1:0".parse()?).await?;
    let addr = listener.local_addr().clone();
    let peer = server.local_peer_id();
    match mode.as_str() {
        "setup" | "setup-keep" => {
            let mut times = Vec::new();
            let mut kept = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                let (a, b) =
                    tokio::join!(client.dial(&addr, Some(peer)), listener.accept_connection());
                times.push(t.elapsed().as_secs_f64() * 1e6);
                let pair = (a?, b?);
                if mode == "setup-keep" {
                    kept.push(pair);
                }
            }
            report(&mode, times);
        }
        "rtt" => {
            let (c, s) = tokio::join!(client.dial(&addr, Some(peer)), listener.accept_connection());
            let (mut c, mut s) = (c?, s?);
            let echo = tokio::spawn(async move {
                while let Ok(Some(m)) = s.recv().await {
                    if s.send(m).await.is_err() {
                        break;
                    }
                }
            });
            let payload = Bytes::from(vec![0x5Au8; size]);
            let mut times = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                c.send(payload.clone()).await?;
                c.recv().await?;
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
            report("rtt", times);
            c.close("done").await?;
            echo.abort();
        }
        "tput" => {
            let (c, s) = tokio::join!(client.dial(&addr, Some(peer)), listener.accept_connection());
            let (c, mut s) = (c?, s?);
            let recv = tokio::spawn(async move {
                for _ in 0..n {
                    s.recv().await.unwrap().unwrap();
                }
                s
            });
            let payload = Bytes::from(vec![0xA5u8; size]);
            let t = Instant::now();
            for _ in 0..n {
                c.send(payload.clone()).await?;
            }
            let s = recv.await?;
            let e = t.elapsed();
            eprintln!(
                "tput {size} B: {:.3} GB/s",
                (n * size) as f64 / e.as_secs_f64() / 1e9
            );
            c.close("done").await?;
            drop(s);
        }
        other => anyhow::bail!("unknown mode {other}"),
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "setup".into());
    let n = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let size = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    tokio::spawn(run(mode, n, size)).await?
}
