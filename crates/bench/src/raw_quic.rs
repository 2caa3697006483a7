//! Raw quinn baseline: one bidirectional stream on the same rustls/ring TLS 1.3 stack and the
//! transport settings our backend gives quinn (quinn's default windows; one bidirectional
//! stream allowed, no unidirectional ones, no datagrams, the same keep-alive, idle timeout and
//! path MTU discovery steps: the knobs a user of quinn with one stream turns), the same u32 length
//! framing, 64 frames per `write_all_chunks` call (frames under 4 KiB copied into one
//! contiguous chunk, larger payloads passed uncopied: the batching our backend does), and the
//! receiver reading up to 256 KiB per call and splitting frames off its buffer (what the
//! stream baselines do).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use quinn::{Connection, Endpoint, RecvStream, SendStream};

/// Frames handed to quinn per write call.
const BATCH: usize = 64;
/// Frames up to this size are copied into one contiguous chunk per batch.
const COPY_LIMIT: usize = 4096;

/// The raw library's name in the report.
pub(crate) const NAME: &str = "quinn, 64 frames per write_all_chunks";

/// A server and a client endpoint that trust each other.
pub(crate) struct Endpoints {
    server: Endpoint,
    client: Endpoint,
    addr: SocketAddr,
}

/// Our backend's quinn settings (`QuicConfig::default()`), for a side that accepts
/// `accept_streams` bidirectional streams.
fn transport(accept_streams: u32) -> Arc<quinn::TransportConfig> {
    bitcraps_transport_quic::QuicConfig::default().quinn_transport(accept_streams)
}

pub(crate) fn endpoints() -> Result<Endpoints> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
    let mut server_config =
        quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key.into())?;
    server_config.transport_config(transport(1));
    let server = Endpoint::server(server_config, "127.0.0.1:0".parse()?)?;
    let addr = server.local_addr()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der)?;
    let mut client = Endpoint::client("127.0.0.1:0".parse()?)?;
    let mut client_config = quinn::ClientConfig::with_root_certificates(Arc::new(roots))?;
    client_config.transport_config(transport(0));
    client.set_default_client_config(client_config);
    Ok(Endpoints {
        server,
        client,
        addr,
    })
}

/// A connection and one stream each way announced (a stream is seen by the peer only once data
/// arrives, so one byte crosses each way): (client conn, client send, client recv, server
/// conn, server send, server recv).
pub(crate) type Streams = (
    Connection,
    SendStream,
    RecvStream,
    Connection,
    SendStream,
    RecvStream,
);

pub(crate) async fn connect(e: &Endpoints) -> Result<Streams> {
    let accept = async {
        let conn = e.server.accept().await.context("no incoming")?.await?;
        let (mut send, mut recv) = conn.accept_bi().await?;
        let mut b = [0u8; 1];
        recv.read_exact(&mut b).await?;
        send.write_all(&b).await?;
        anyhow::Ok((conn, send, recv))
    };
    let dial = async {
        let conn = e.client.connect(e.addr, "localhost")?.await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(&[1]).await?;
        let mut b = [0u8; 1];
        recv.read_exact(&mut b).await?;
        anyhow::Ok((conn, send, recv))
    };
    let (a, d) = tokio::join!(accept, dial);
    let ((sc, ss, sr), (cc, cs, cr)) = (a?, d?);
    Ok((cc, cs, cr, sc, ss, sr))
}

/// Time to move `count` frames of `size` bytes one way.
pub(crate) async fn throughput(size: usize, count: usize) -> Result<Duration> {
    let e = endpoints()?;
    let (client, mut send, _cr, _server, _ss, recv) = connect(&e).await?;
    let receive = tokio::spawn(crate::raw_stream::receive_frames(recv, count));
    let payload = Bytes::from(vec![0xA5u8; size]);
    let header = Bytes::copy_from_slice(&(size as u32).to_be_bytes());
    let start = Instant::now();
    let mut left = count;
    let mut chunks = Vec::with_capacity(2 * BATCH);
    while left > 0 {
        let n = left.min(BATCH);
        chunks.clear();
        if size <= COPY_LIMIT {
            let mut run = BytesMut::with_capacity(n * (size + 4));
            for _ in 0..n {
                run.extend_from_slice(&header);
                run.extend_from_slice(&payload);
            }
            chunks.push(run.freeze());
        } else {
            for _ in 0..n {
                chunks.push(header.clone());
                chunks.push(payload.clone());
            }
        }
        send.write_all_chunks(&mut chunks).await?;
        left -= n;
    }
    let end = receive.await??;
    client.close(0u32.into(), b"done");
    Ok(end - start)
}

/// `rounds` round trips of one framed `size`-byte message, in microseconds.
pub(crate) async fn rtt(size: usize, rounds: usize) -> Result<Vec<f64>> {
    let e = endpoints()?;
    let (client, mut send, mut recv, _server, mut ss, mut sr) = connect(&e).await?;
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 4 + size];
        while sr.read_exact(&mut buf).await.is_ok() {
            ss.write_all(&buf).await?;
        }
        anyhow::Ok(())
    });
    // The same timed loop as the stream baselines, over the stream's two halves.
    let out = crate::raw_stream::ping(tokio::io::join(&mut recv, &mut send), size, rounds).await?;
    client.close(0u32.into(), b"done");
    echo.abort();
    Ok(out)
}

/// `n` setups: QUIC + TLS 1.3 handshake and one stream opened and answered, in microseconds.
pub(crate) async fn setup(n: usize) -> Result<Vec<f64>> {
    let e = endpoints()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let s = connect(&e).await?;
        out.push(start.elapsed().as_secs_f64() * 1e6);
        s.0.close(0u32.into(), b"done");
    }
    Ok(out)
}
