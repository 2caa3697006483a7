//! The same workload on the raw library each backend wraps: tokio TCP with the same u32 length
//! framing (no encryption), and tokio's in-memory duplex pipe for the memory backend.

use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

async fn pump<R, W>(
    mut reader: R,
    mut writer: W,
    size: usize,
    count: usize,
) -> anyhow::Result<Duration>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let receive = tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0usize;
        let total = (size + 4) * count;
        while got < total {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                bail!("closed early");
            }
            got += n;
        }
        anyhow::Ok(Instant::now())
    });
    let mut frame = Vec::with_capacity(size + 4);
    frame.extend_from_slice(&(size as u32).to_be_bytes());
    frame.resize(size + 4, 0xA5);
    let start = Instant::now();
    for _ in 0..count {
        writer.write_all(&frame).await?;
    }
    writer.flush().await?;
    let end = receive.await??;
    Ok(end - start)
}

/// Time to move `count` length-prefixed frames of `size` bytes over the raw library.
pub(crate) async fn measure(
    backend: &str,
    size: usize,
    count: usize,
) -> anyhow::Result<(&'static str, Duration)> {
    match backend {
        "tcp" => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (client, server) =
                tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
            let client = client?;
            let (server, _) = server?;
            client.set_nodelay(true)?;
            server.set_nodelay(true)?;
            let (_, w) = client.into_split();
            let (r, _) = server.into_split();
            Ok(("tokio TcpStream", pump(r, w, size, count).await?))
        }
        "memory" => {
            let (a, b) = tokio::io::duplex(64 * 1024);
            let (_, w) = tokio::io::split(a);
            let (r, _) = tokio::io::split(b);
            Ok(("tokio::io::duplex", pump(r, w, size, count).await?))
        }
        other => bail!("unknown backend {other}"),
    }
}
