//! Raw baselines on byte streams: tokio `TcpStream` and `tokio::io::duplex`, with the same u32
//! big-endian length framing as ours and no encryption. The writer is a 256 KiB `BufWriter`
//! (one syscall per buffer, not per frame); the reader pulls into a 256 KiB buffer and splits
//! frames off it as `Bytes`, as a real receiver would.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};

/// Write and read buffer size of the raw baselines.
const BUFFER: usize = 256 * 1024;

/// Reads frames until `count` were received; returns when the last one arrived.
pub(crate) async fn receive_frames<R: AsyncRead + Unpin>(
    mut reader: R,
    count: usize,
) -> Result<Instant> {
    let mut buf = BytesMut::with_capacity(BUFFER);
    let mut got = 0;
    while got < count {
        while buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len > 16 << 20 {
                bail!("frame of {len} bytes");
            }
            if buf.len() < 4 + len {
                buf.reserve(4 + len);
                break;
            }
            buf.advance(4);
            let frame = buf.split_to(len).freeze();
            std::hint::black_box(frame);
            got += 1;
        }
        if got == count {
            break;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(BUFFER);
        }
        if reader.read_buf(&mut buf).await? == 0 {
            bail!("closed after {got} of {count} frames");
        }
    }
    Ok(Instant::now())
}

/// Writes `count` frames of `size` bytes through a 256 KiB buffer, then flushes.
async fn send_frames<W: AsyncWrite + Unpin>(writer: W, size: usize, count: usize) -> Result<()> {
    let mut w = BufWriter::with_capacity(BUFFER, writer);
    let payload = vec![0xA5u8; size];
    let header = (size as u32).to_be_bytes();
    for _ in 0..count {
        w.write_all(&header).await?;
        w.write_all(&payload).await?;
    }
    w.flush().await?;
    Ok(())
}

async fn pump<R, W>(reader: R, writer: W, size: usize, count: usize) -> Result<Duration>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let receive = tokio::spawn(receive_frames(reader, count));
    let start = Instant::now();
    send_frames(writer, size, count).await?;
    let end = receive.await??;
    Ok(end - start)
}

async fn tcp_pair(listener: &TcpListener) -> Result<(TcpStream, TcpStream)> {
    let (client, server) = tokio::join!(
        TcpStream::connect(listener.local_addr()?),
        listener.accept()
    );
    let (client, (server, _)) = (client?, server?);
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

/// The raw library of a stream backend, by name.
pub(crate) fn name(backend: &str) -> &'static str {
    match backend {
        "memory" => "tokio::io::duplex",
        _ => "tokio TcpStream + BufWriter",
    }
}

/// Time to move `count` frames of `size` bytes one way.
pub(crate) async fn throughput(backend: &str, size: usize, count: usize) -> Result<Duration> {
    match backend {
        "tcp" => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let (client, server) = tcp_pair(&listener).await?;
            pump(server, client, size, count).await
        }
        "memory" => {
            let (a, b) = tokio::io::duplex(BUFFER);
            pump(b, a, size, count).await
        }
        other => bail!("no raw stream baseline for {other}"),
    }
}

/// Echoes frames back: reads through a buffer (one read syscall for header and body) and
/// writes each frame with one call (one segment with `TCP_NODELAY`, not a header segment and a
/// body segment).
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(s: S) -> Result<()> {
    let mut s = tokio::io::BufReader::new(s);
    let mut frame = vec![0u8; 4];
    loop {
        frame.truncate(4);
        if s.read_exact(&mut frame).await.is_err() {
            return Ok(());
        }
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        frame.resize(4 + len, 0);
        s.read_exact(&mut frame[4..]).await?;
        s.write_all(&frame).await?;
    }
}

/// `rounds` timed round trips of one framed `size`-byte message on `s`, in microseconds.
pub(crate) async fn ping<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    size: usize,
    rounds: usize,
) -> Result<Vec<f64>> {
    let mut frame = (size as u32).to_be_bytes().to_vec();
    frame.resize(4 + size, 0x5A);
    let mut back = vec![0u8; 4 + size];
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        s.write_all(&frame).await?;
        s.read_exact(&mut back).await?;
        out.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(out)
}

/// `rounds` round trips of one framed `size`-byte message, in microseconds.
pub(crate) async fn rtt(backend: &str, size: usize, rounds: usize) -> Result<Vec<f64>> {
    match backend {
        "tcp" => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let (client, server) = tcp_pair(&listener).await?;
            let e = tokio::spawn(echo(server));
            let r = ping(client, size, rounds).await;
            e.abort();
            r
        }
        "memory" => {
            let (a, b) = tokio::io::duplex(BUFFER);
            let e = tokio::spawn(echo(b));
            let r = ping(a, size, rounds).await;
            e.abort();
            r
        }
        other => bail!("no raw stream baseline for {other}"),
    }
}

/// `n` TCP connection setups (connect until accepted), in microseconds.
pub(crate) async fn tcp_setup(n: usize) -> Result<Vec<f64>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let pair = tcp_pair(&listener).await?;
        out.push(start.elapsed().as_secs_f64() * 1e6);
        drop(pair);
    }
    Ok(out)
}
