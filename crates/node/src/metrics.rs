//! `listen --metrics ADDR`: the coordinator's counters in the Prometheus text format over a
//! minimal HTTP/1.1 responder on tokio. One request per connection (`Connection: close`):
//! `GET /metrics` answers 200 with the page, any other path 404, any other method 405, a
//! request head over [`MAX_HEAD`] bytes 431, a malformed one 400. A connection has
//! [`REQUEST_TIMEOUT`] to send its head and get its answer; at most [`MAX_CLIENTS`] are served
//! at once (the rest wait in the kernel's accept queue). Nothing here is read past the head.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bitcraps_coordinator::metrics::{self, Registry, CONTENT_TYPE};
use bitcraps_coordinator::TransportCoordinator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The largest request head read.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
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

/// What a request head asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// `GET /metrics` (a query string is ignored).
    Metrics,
    /// `GET` of another path.
    NotFound,
    /// Another method.
    BadMethod,
    /// A head over [`MAX_HEAD`] bytes.
    TooLarge,
    /// Not an HTTP/1.x request line.
    Malformed,
}

/// Where the head ends (the blank line), if it has.
fn find_end(head: &[u8]) -> Option<usize> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n");
    end.or_else(|| head.windows(2).position(|w| w == b"\n\n"))
}

/// Parses a request head's first line.
pub(crate) fn parse(head: &[u8]) -> Request {
    if head.len() > MAX_HEAD {
        return Request::TooLarge;
    }
    let Ok(text) = std::str::from_utf8(head) else {
        return Request::Malformed;
    };
    let line = text.lines().next().unwrap_or("");
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Request::Malformed;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Request::Malformed;
    }
    if method != "GET" {
        return Request::BadMethod;
    }
    let path = target.split('?').next().unwrap_or(target);
    if path == "/metrics" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart() {
        let p = |s: &str| parse(s.as_bytes());
        assert_eq!(p("GET /metrics HTTP/1.1\r\nHost: x\r\n"), Request::Metrics);
        assert_eq!(p("GET /metrics?x=1 HTTP/1.0"), Request::Metrics);
        assert_eq!(p("GET / HTTP/1.1"), Request::NotFound);
        assert_eq!(p("GET /metricsx HTTP/1.1"), Request::NotFound);
        assert_eq!(p("POST /metrics HTTP/1.1"), Request::BadMethod);
        assert_eq!(p("GET /metrics"), Request::Malformed);
        assert_eq!(p("GET metrics HTTP/1.1"), Request::Malformed);
        assert_eq!(p("GET /metrics SPDY/3"), Request::Malformed);
        assert_eq!(p("GET  /metrics HTTP/1.1"), Request::Malformed);
        assert_eq!(parse(&[0xff, 0xfe]), Request::Malformed);
        assert_eq!(parse(&vec![b'a'; MAX_HEAD + 1]), Request::TooLarge);
    }

    #[test]
    fn the_head_ends_at_the_blank_line() {
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(20));
        assert_eq!(find_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\n"), None);
    }

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
