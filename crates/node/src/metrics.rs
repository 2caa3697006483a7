//! `listen --metrics ADDR`: the coordinator's counters in the Prometheus text format over a
//! minimal HTTP/1.1 responder on tokio. One request per connection (`Connection: close`):
//! `GET /metrics` answers 200 with the page, any other path 404, any other method 405, a
//! request head over `MAX_HEAD` bytes (8 KiB) 431, a malformed one 400. A connection has
//! [`REQUEST_TIMEOUT`] to send its head and get its answer; at most [`MAX_CLIENTS`] are served
//! at once (the rest wait in the kernel's accept queue). Nothing here is read past the head.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bitcraps_coordinator::metrics::http::{find_end, parse, Request, MAX_HEAD};
use bitcraps_coordinator::metrics::{self, Registry, CONTENT_TYPE};
use bitcraps_coordinator::TransportCoordinator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How long one connection may take, request and answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub(crate) const MAX_CLIENTS: usize = 8;

/// The metrics endpoint, serving in the background until the process exits.
#[derive(Debug)]
pub(crate) struct MetricsServer {
    /// The bound address (the real port when 0 was asked for).
    pub(crate) local: SocketAddr,
}

impl MetricsServer {
    /// The scrape URL.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/metrics", self.local)
    }
}

/// Binds `addr` and serves `coordinator`'s metrics there.
pub(crate) async fn serve(
    addr: SocketAddr,
    coordinator: &TransportCoordinator,
) -> Result<MetricsServer> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics listener on {addr}"))?;
    let local = listener.local_addr().context("metrics listener address")?;
    let registry = Arc::new(metrics::registry(coordinator, metrics::DEFAULT_MAX_PEERS));
    tokio::spawn(accept_loop(listener, registry));
    Ok(MetricsServer { local })
}

async fn accept_loop(listener: TcpListener, registry: Arc<Registry>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: try again (the permit is dropped here).
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let served = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &registry)).await;
            match served {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "metrics request failed"),
                Err(_) => tracing::debug!(%remote, "metrics request timed out"),
            }
            drop(permit);
        });
    }
}

/// Reads one request head and writes the answer.
async fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let request = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(()); // closed before a full head: nothing to answer
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find_end(&head) {
            break parse(&head[..end]);
        }
        if head.len() >= MAX_HEAD {
            break Request::TooLarge;
        }
    };
    let (status, body) = match request {
        Request::Metrics => match metrics::encode(registry) {
            Ok(page) => ("200 OK", page),
            Err(e) => ("500 Internal Server Error", format!("{e}\n")),
        },
        Request::NotFound => ("404 Not Found", "try /metrics\n".to_string()),
        Request::BadMethod => ("405 Method Not Allowed", "GET only\n".to_string()),
        Request::TooLarge => (
            "431 Request Header Fields Too Large",
            "request head too large\n".to_string(),
        ),
        Request::Malformed => ("400 Bad Request", "malformed request\n".to_string()),
    };
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scrape_over_http_gets_the_page_and_a_flood_gets_431() {
        let c = bitcraps_coordinator::TransportCoordinator::builder()
            .transport(std::sync::Arc::new(
                bitcraps_transport_mem::MemoryTransport::new(
                    &bitcraps_transport_mem::MemoryNetwork::new(),
                    bitcraps_transport_core::Keypair::generate(),
                ),
            ))
            .build()
            .unwrap();
        let server = serve("127.0.0.1:0".parse().unwrap(), &c).await.unwrap();
        let get = |req: Vec<u8>| async move {
            let mut s = TcpStream::connect(server.local).await.unwrap();
            s.write_all(&req).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let page = get(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()).await;
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(
            page.contains("bitcraps_messages_delivered_total 0\n"),
            "{page}"
        );
        let big = get(vec![b'G'; MAX_HEAD]).await;
        assert!(big.starts_with("HTTP/1.1 431 "), "{big}");
        let other = get(b"GET /x HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
    }
}
