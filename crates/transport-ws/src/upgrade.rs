//! The HTTP upgrade, both sides.
//!
//! Listener: we parse the request head ourselves (with `httparse`, at most
//! [`MAX_REQUEST_HEAD`] bytes) instead of using tungstenite's `accept_hdr_async`, because
//! tungstenite drops a request that is not a WebSocket upgrade without answering; ours gets a
//! proper HTTP error and the connection is closed:
//!
//! | request | answer |
//! |---|---|
//! | not `GET` | 405 Method Not Allowed |
//! | path other than the listener's (query ignored) | 404 Not Found |
//! | no `Upgrade: websocket` / `Connection: upgrade` | 426 Upgrade Required |
//! | `Sec-WebSocket-Version` other than 13 | 426, with `Sec-WebSocket-Version: 13` |
//! | no valid `Sec-WebSocket-Key`, not HTTP/1.1, malformed | 400 Bad Request |
//! | `bitcraps.v1` not among `Sec-WebSocket-Protocol` | 400 Bad Request |
//! | head over 8 KiB or too many headers | 431 Request Header Fields Too Large |
//!
//! A valid request gets `101 Switching Protocols` with `Sec-WebSocket-Protocol: bitcraps.v1`.
//! A source refused by a limit before the upgrade (`ws://` only) gets `429 Too Many Requests`
//! with `Retry-After` and the limit, which the dialer turns into `Error::RemoteLimit`.
//!
//! Dialer: tokio-tungstenite's `client_async_with_config` over our own (TLS) stream, offering
//! `bitcraps.v1`; tungstenite fails the handshake unless the answer selects it.

use std::time::Duration;

use bitcraps_transport_core::refusal::{limit_from_id, retry_ms};
use bitcraps_transport_core::secure::record::limit_id;
use bitcraps_transport_core::LimitRejection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::socket::Socket;
use crate::{WsError, MAX_REQUEST_HEAD, SUBPROTOCOL};

/// The headers of an upgrade request that matter, copied out of the parse.
#[derive(Debug, Default)]
struct UpgradeRequest {
    method_get: bool,
    http11: bool,
    path: String,
    upgrade_websocket: bool,
    connection_upgrade: bool,
    version_13: bool,
    key: Option<String>,
    bitcraps_protocol: bool,
}

/// An HTTP refusal: status, reason phrase, and why (the body).
struct Refusal {
    status: u16,
    phrase: &'static str,
    why: &'static str,
    extra: &'static str,
}

fn refuse(status: u16, phrase: &'static str, why: &'static str) -> Refusal {
    Refusal {
        status,
        phrase,
        why,
        extra: "",
    }
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Parses a complete head, or says it is incomplete (`Ok(None)`).
fn parse_head(head: &[u8]) -> Result<Option<(usize, UpgradeRequest)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(head) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(
                431,
                "Request Header Fields Too Large",
                "too many headers",
            ))
        }
        Err(_) => return Err(refuse(400, "Bad Request", "malformed HTTP request")),
    };
    let mut out = UpgradeRequest {
        method_get: req.method == Some("GET"),
        http11: req.version == Some(1),
        path: req.path.unwrap_or("").to_string(),
        ..UpgradeRequest::default()
    };
    for header in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(header.value) else {
            continue;
        };
        let name = header.name;
        if name.eq_ignore_ascii_case("upgrade") {
            out.upgrade_websocket |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            out.connection_upgrade |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            out.version_13 = value.trim() == "13";
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            out.key = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            out.bitcraps_protocol |= value.split(',').any(|p| p.trim() == SUBPROTOCOL);
        }
    }
    Ok(Some((len, out)))
}

/// Decides the answer to a parsed request: the accept key, or a refusal.
fn check(request: &UpgradeRequest, path: &str) -> Result<String, Refusal> {
    if !request.method_get {
        let mut r = refuse(405, "Method Not Allowed", "only GET upgrades");
        r.extra = "Allow: GET\r\n";
        return Err(r);
    }
    let requested = request.path.split('?').next().unwrap_or("");
    if requested != path {
        return Err(refuse(
            404,
            "Not Found",
            "no websocket endpoint at this path",
        ));
    }
    if !request.http11 {
        return Err(refuse(400, "Bad Request", "HTTP/1.1 required"));
    }
    if !request.upgrade_websocket || !request.connection_upgrade {
        let mut r = refuse(426, "Upgrade Required", "websocket upgrade required");
        r.extra = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
        return Err(r);
    }
    if !request.version_13 {
        let mut r = refuse(426, "Upgrade Required", "websocket version 13 required");
        r.extra = "Sec-WebSocket-Version: 13\r\n";
        return Err(r);
    }
    // The key is base64 of 16 bytes: 24 characters ending in "==".
    let key = match &request.key {
        Some(k) if k.len() == 24 && k.ends_with("==") => k,
        _ => {
            return Err(refuse(
                400,
                "Bad Request",
                "missing or malformed Sec-WebSocket-Key",
            ))
        }
    };
    if !request.bitcraps_protocol {
        return Err(refuse(
            400,
            "Bad Request",
            "subprotocol bitcraps.v1 required",
        ));
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// Reads the request head: parsed, with the bytes read past it; or the refusal to send.
async fn read_head(
    socket: &mut Socket,
) -> Result<Result<(UpgradeRequest, Vec<u8>), Refusal>, WsError> {
    let mut buf = vec![0u8; MAX_REQUEST_HEAD];
    let mut filled = 0;
    loop {
        let n = match socket.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return Err(WsError::ClosedDuringUpgrade),
            Ok(n) => n,
        };
        filled += n;
        match parse_head(&buf[..filled]) {
            Ok(Some((len, request))) => return Ok(Ok((request, buf[len..filled].to_vec()))),
            Ok(None) if filled == buf.len() => {
                let why = "request head too large";
                return Ok(Err(refuse(431, "Request Header Fields Too Large", why)));
            }
            Ok(None) => {}
            Err(refusal) => return Ok(Err(refusal)),
        }
    }
}

/// Listener side: TLS accept (if configured), then the HTTP upgrade on `path`.
///
/// When `refused` holds a source-limit refusal by the time the head is read, the answer is
/// `429 Too Many Requests` (see [`too_many_requests`]) whatever the request.
pub(crate) async fn accept(
    tcp: tokio::net::TcpStream,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    path: std::sync::Arc<str>,
    config: WebSocketConfig,
    refused: std::sync::Arc<std::sync::OnceLock<LimitRejection>>,
) -> Result<WebSocketStream<Socket>, WsError> {
    let mut socket = Socket::accept(tcp, tls.as_ref()).await?;
    let head = read_head(&mut socket).await?;
    if let Some(rejection) = refused.get() {
        // Best effort, like every refusal: the limit is reported by the accept loop.
        let _ = socket
            .write_all(too_many_requests(rejection).as_bytes())
            .await;
        let _ = socket.shutdown().await;
        return Err(WsError::Rejected {
            status: 429,
            reason: "source limit",
        });
    }
    let answer =
        head.and_then(|(request, leftover)| check(&request, &path).map(|key| (key, leftover)));
    match answer {
        Ok((key, leftover)) => {
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {key}\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
            );
            socket
                .write_all(response.as_bytes())
                .await
                .map_err(|_| WsError::ClosedDuringUpgrade)?;
            socket
                .flush()
                .await
                .map_err(|_| WsError::ClosedDuringUpgrade)?;
            Ok(
                WebSocketStream::from_partially_read(socket, leftover, Role::Server, Some(config))
                    .await,
            )
        }
        Err(r) => {
            let response = format!(
                "HTTP/1.1 {} {}\r\n{}Content-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{}\n",
                r.status,
                r.phrase,
                r.extra,
                r.why.len() + 1,
                r.why
            );
            // Best effort: the refusal is ours either way.
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
            Err(WsError::Rejected {
                status: r.status,
                reason: r.why,
            })
        }
    }
}

/// The header naming the limit in a 429 (its REJECT id, `docs/protocol.md` section 4).
pub(crate) const LIMIT_HEADER: &str = "Bitcraps-Limit";
/// The header with the exact retry time in milliseconds in a 429 (absent when unknown).
pub(crate) const RETRY_MS_HEADER: &str = "Bitcraps-Retry-After-Ms";

/// The answer to a source refused by a limit before the upgrade: `429 Too Many Requests`,
/// `Retry-After` in whole seconds (rounded up) and the exact limit and retry time in our own
/// headers; both retry headers are absent when the retry time is unknown.
pub(crate) fn too_many_requests(rejection: &LimitRejection) -> String {
    let ms = retry_ms(rejection.retry_after);
    let retry = if ms == u32::MAX {
        String::new()
    } else {
        format!(
            "Retry-After: {}\r\n{RETRY_MS_HEADER}: {ms}\r\n",
            u64::from(ms).div_ceil(1000)
        )
    };
    let why = rejection.to_string();
    format!(
        "HTTP/1.1 429 Too Many Requests\r\n{retry}{LIMIT_HEADER}: {}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{why}\n",
        limit_id(rejection.limit),
        why.len() + 1,
    )
}

/// The limit a 429 answer names, if it carries our [`LIMIT_HEADER`] (a 429 from anyone else,
/// e.g. a proxy, stays a plain HTTP status).
fn refusal_of(headers: &tokio_tungstenite::tungstenite::http::HeaderMap) -> Option<LimitRejection> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    let limit = limit_from_id(text(LIMIT_HEADER)?.parse().ok()?)?;
    let retry_after = match (text(RETRY_MS_HEADER), text("Retry-After")) {
        (Some(ms), _) => ms.parse().ok().map(Duration::from_millis),
        (None, Some(secs)) => secs.parse().ok().map(Duration::from_secs),
        (None, None) => None,
    };
    Some(LimitRejection { limit, retry_after })
}

/// Dialer side: the WebSocket handshake for `url` over `socket`, offering `bitcraps.v1`.
pub(crate) async fn connect(
    socket: Socket,
    url: &str,
    config: WebSocketConfig,
) -> Result<WebSocketStream<Socket>, WsError> {
    use tokio_tungstenite::tungstenite::Error as T;
    let mut request = url
        .into_client_request()
        .map_err(|e| WsError::ClientHandshake(e.to_string()))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    match tokio_tungstenite::client_async_with_config(request, socket, Some(config)).await {
        Ok((ws, _response)) => Ok(ws),
        Err(T::Http(response)) => {
            match (response.status().as_u16(), refusal_of(response.headers())) {
                (429, Some(rejection)) => Err(WsError::Refused(rejection)),
                (status, _) => Err(WsError::HttpStatus(status)),
            }
        }
        Err(T::Io(_) | T::ConnectionClosed | T::AlreadyClosed) => Err(WsError::ClosedDuringUpgrade),
        Err(e) => Err(WsError::ClientHandshake(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(head: &str) -> Result<String, u16> {
        let (len, request) = parse_head(head.as_bytes())
            .map_err(|r| r.status)?
            .expect("complete head");
        assert_eq!(len, head.len());
        check(&request, "/bitcraps").map_err(|r| r.status)
    }

    const GOOD: &str = "GET /bitcraps HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat, bitcraps.v1\r\n\r\n";

    #[test]
    fn a_valid_upgrade_gets_the_rfc_accept_key() {
        // RFC 6455 section 1.3's example key and answer.
        assert_eq!(answer(GOOD).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let with_query = GOOD.replace("/bitcraps ", "/bitcraps?x=1 ");
        assert!(answer(&with_query).is_ok());
    }

    #[test]
    fn bad_requests_get_the_right_status() {
        assert_eq!(
            answer("GET /bitcraps HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(426)
        );
        assert_eq!(answer(&GOOD.replace("/bitcraps ", "/other ")), Err(404));
        assert_eq!(answer(&GOOD.replace("GET", "POST")), Err(405));
        assert_eq!(answer(&GOOD.replace("chat, bitcraps.v1", "chat")), Err(400));
        assert_eq!(answer(&GOOD.replace("Version: 13", "Version: 8")), Err(426));
        assert_eq!(
            answer(&GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "x")),
            Err(400)
        );
        assert_eq!(answer(&GOOD.replace("HTTP/1.1", "HTTP/1.0")), Err(400));
        assert_eq!(answer("GET / HTTP/1.1\r\n\u{1}\r\n\r\n"), Err(400));
        let many: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(answer(&format!("GET / HTTP/1.1\r\n{many}\r\n")), Err(431));
    }

    #[test]
    fn a_429_names_the_limit_and_the_retry_time() {
        let rejection = LimitRejection {
            limit: bitcraps_transport_core::LimitKind::NewConnectionRate,
            retry_after: Some(Duration::from_millis(2500)),
        };
        let answer = too_many_requests(&rejection);
        assert!(answer.starts_with("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"));
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(len)) = response.parse(answer.as_bytes()) else {
            panic!("a complete response");
        };
        assert_eq!(response.code, Some(429));
        let mut map = tokio_tungstenite::tungstenite::http::HeaderMap::new();
        for h in response.headers.iter() {
            map.insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(h.name.as_bytes())
                    .unwrap(),
                HeaderValue::from_bytes(h.value).unwrap(),
            );
        }
        assert_eq!(refusal_of(&map), Some(rejection));
        assert_eq!(&answer[len..], format!("{rejection}\n"));
        let unknown = LimitRejection {
            retry_after: None,
            ..rejection
        };
        assert!(!too_many_requests(&unknown).contains("Retry-After"));
    }

    #[test]
    fn a_partial_head_asks_for_more() {
        assert!(matches!(
            parse_head(b"GET /bitcraps HTTP/1.1\r\nHost"),
            Ok(None)
        ));
    }
}
