//! Hostile and foreign input: plain HTTP, wrong paths, WebSocket clients that are not ours,
//! text messages, a tampered byte inside the Noise stream, and the limiter running before the
//! upgrade. Each gets a typed refusal and the listener keeps serving.

mod common;

use std::net::SocketAddr;

use bitcraps_transport_core::{
    Bytes, ConnectionLimits, Error, Inbound, Listener, ProtocolError, Transport,
};
use bitcraps_transport_ws::{ws_error, WebSocketTransport, WsError, SUBPROTOCOL};
use common::*;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// The next refusal the listener reports.
async fn refused(listener: &mut Box<dyn Listener>) -> Error {
    match listener.accept().await.unwrap() {
        Inbound::Refused { error, .. } => error,
        Inbound::Connection(c) => panic!("unexpected connection from {}", c.remote_peer()),
        _ => panic!("unexpected inbound event"),
    }
}

/// The listener still authenticates a real client.
async fn still_serves(server: &WebSocketTransport, listener: &mut Box<dyn Listener>) {
    let client = transport(config(false));
    let (dialed, mut accepted) = connect(&client, server, listener).await;
    dialed.send(Bytes::from_static(b"ok")).await.unwrap();
    assert_eq!(accepted.recv().await.unwrap().unwrap(), &b"ok"[..]);
}

/// Sends `request` from 127.0.0.`source` and returns the whole answer.
async fn http(addr: SocketAddr, source: u8, request: &str) -> String {
    let mut tcp = raw_tcp(addr, source).await;
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // A reset (the listener dropped us with our request unread) ends the answer too.
    let _ = tcp.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn request_with_protocol(url: &str) -> tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    request
}

fn rejected_status(error: &Error) -> Option<u16> {
    match ws_error(error) {
        Some(WsError::Rejected { status, .. }) => Some(*status),
        _ => None,
    }
}

#[tokio::test]
async fn a_plain_http_get_gets_426_and_the_listener_keeps_serving() {
    guarded(async {
        let server = transport(config(false));
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let addr = socket_addr(listener.as_ref());
        let answer = http(addr, 2, "GET /bitcraps HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{answer}"
        );
        assert!(answer.contains("Upgrade: websocket\r\n"), "{answer}");
        assert_eq!(rejected_status(&refused(&mut listener).await), Some(426));
        let answer = http(addr, 2, "garbage\r\n\r\n").await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert_eq!(rejected_status(&refused(&mut listener).await), Some(400));
        still_serves(&server, &mut listener).await;
        assert_eq!(listener.stats().failed_handshakes, 2);
    })
    .await;
}

#[tokio::test]
async fn a_wrong_path_gets_404_typed_on_both_sides() {
    guarded(async {
        let server = transport(config(false));
        let client = transport(config(false));
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let addr = socket_addr(listener.as_ref());
        let wrong = format!("ws://{addr}/elsewhere").parse().unwrap();
        let err = client.dial(&wrong, None).await.unwrap_err();
        assert_eq!(ws_error(&err), Some(&WsError::HttpStatus(404)), "{err:?}");
        assert_eq!(rejected_status(&refused(&mut listener).await), Some(404));
        still_serves(&server, &mut listener).await;
    })
    .await;
}

#[tokio::test]
async fn a_websocket_client_without_the_subprotocol_gets_400() {
    guarded(async {
        let server = transport(config(false));
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let addr = socket_addr(listener.as_ref());
        let url = format!("ws://{addr}/bitcraps");
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
            other => panic!("expected HTTP 400, got {other:?}"),
        }
        assert_eq!(rejected_status(&refused(&mut listener).await), Some(400));
        still_serves(&server, &mut listener).await;
    })
    .await;
}

#[tokio::test]
async fn a_foreign_websocket_client_sending_garbage_is_refused() {
    guarded(async {
        let server = transport(config(false));
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let addr = socket_addr(listener.as_ref());
        let request = request_with_protocol(&format!("ws://{addr}/bitcraps"));
        let (mut foreign, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            response.headers().get("Sec-WebSocket-Protocol").unwrap(),
            SUBPROTOCOL
        );
        foreign
            .send(Message::Binary(Bytes::from(vec![0xab; 300])))
            .await
            .unwrap();
        let error = refused(&mut listener).await;
        assert!(
            matches!(error, Error::Protocol(_) | Error::Handshake(_)),
            "{error:?}"
        );
        // The listener closed the WebSocket.
        while let Some(Ok(m)) = foreign.next().await {
            assert!(matches!(m, Message::Close(_)), "{m:?}");
        }
        still_serves(&server, &mut listener).await;
    })
    .await;
}

#[tokio::test]
async fn a_text_message_is_refused_with_close_1003() {
    guarded(async {
        let server = transport(config(false));
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let addr = socket_addr(listener.as_ref());
        let request = request_with_protocol(&format!("ws://{addr}/bitcraps"));
        let (mut foreign, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        foreign.send(Message::text("hello")).await.unwrap();
        let error = refused(&mut listener).await;
        assert_eq!(ws_error(&error), Some(&WsError::TextMessage), "{error:?}");
        match foreign.next().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Unsupported),
            other => panic!("expected close 1003, got {other:?}"),
        }
        still_serves(&server, &mut listener).await;
    })
    .await;
}

#[tokio::test]
async fn the_limiter_refuses_before_any_upgrade_work() {
    guarded(async {
        let mut config = config(false);
        config.limits = ConnectionLimits {
            max_new_connections_per_minute: 1,
            ..ConnectionLimits::unlimited()
        };
        let server = transport(config);
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let addr = socket_addr(listener.as_ref());
        let get = "GET /bitcraps HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(http(addr, 3, get).await.starts_with("HTTP/1.1 426"));
        assert_eq!(rejected_status(&refused(&mut listener).await), Some(426));
        // Same source, over its rate: no upgrade work, a 429 naming the limit.
        let answer = http(addr, 3, get).await;
        assert!(
            answer.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\r\nRetry-After: "), "{answer}");
        assert!(answer.contains("\r\nBitcraps-Limit: 3\r\n"), "{answer}");
        assert!(matches!(refused(&mut listener).await, Error::Limit(_)));
        // Another source is unaffected.
        assert!(http(addr, 4, get).await.starts_with("HTTP/1.1 426"));
        assert_eq!(rejected_status(&refused(&mut listener).await), Some(426));
    })
    .await;
}

/// A WebSocket proxy (it is a "TLS-terminating" hop in miniature): forwards messages both
/// ways, flipping the last byte of the first client message longer than 1,000 bytes.
#[allow(clippy::result_large_err)] // tungstenite's callback signature, not ours
async fn tampering_proxy(target: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let answer = |_: &Request, mut response: Response| {
            let value = HeaderValue::from_static(SUBPROTOCOL);
            response
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", value);
            Ok(response)
        };
        let client_side = tokio_tungstenite::accept_hdr_async(tcp, answer)
            .await
            .unwrap();
        let request = request_with_protocol(&format!("ws://{target}/bitcraps"));
        let (server_side, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let (mut to_client, mut from_client) = client_side.split();
        let (mut to_server, mut from_server) = server_side.split();
        let down = async {
            while let Some(Ok(m)) = from_server.next().await {
                if to_client.send(m).await.is_err() {
                    break;
                }
            }
        };
        let up = async {
            let mut flipped = false;
            while let Some(Ok(m)) = from_client.next().await {
                let m = match m {
                    Message::Binary(b) if !flipped && b.len() > 1000 => {
                        flipped = true;
                        let mut v = b.to_vec();
                        *v.last_mut().unwrap() ^= 0x01;
                        Message::Binary(v.into())
                    }
                    other => other,
                };
                if to_server.send(m).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(up, down);
    });
    addr
}

#[tokio::test]
async fn a_tampered_byte_in_the_noise_stream_fails_decryption() {
    guarded(async {
        let server = transport(config(false));
        let client = transport(config(false));
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let proxy = tampering_proxy(socket_addr(listener.as_ref())).await;
        let via_proxy = format!("ws://{proxy}/bitcraps").parse().unwrap();
        let (dialed, accepted) = tokio::join!(
            client.dial(&via_proxy, Some(server.local_peer_id())),
            listener.accept_connection()
        );
        let (dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
        assert_eq!(accepted.remote_peer(), client.local_peer_id());
        dialed.send(Bytes::from(vec![7u8; 2000])).await.unwrap();
        let err = accepted.recv().await.unwrap_err();
        assert!(
            matches!(err, Error::Protocol(ProtocolError::Decrypt)),
            "{err:?}"
        );
        assert_eq!(accepted.recv().await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_handshake_over_a_dead_upgrade_times_out_typed() {
    tokio::time::pause();
    let server = transport(config(false));
    let mut listener = server.listen(&listen_url(false)).await.unwrap();
    let addr = socket_addr(listener.as_ref());
    // Connects, then sends nothing: the lazy upgrade waits under the handshake timeout.
    let _silent = raw_tcp(addr, 5).await;
    let error = refused(&mut listener).await;
    assert!(
        matches!(
            error,
            Error::Timeout {
                operation: "handshake",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn plain_http_to_a_wss_listener_is_a_typed_tls_failure() {
    guarded(async {
        let server = transport(config(true));
        let mut listener = server.listen(&listen_url(true)).await.unwrap();
        let addr = socket_addr(listener.as_ref());
        let _ = http(addr, 6, "GET /bitcraps HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let error = refused(&mut listener).await;
        assert!(
            matches!(ws_error(&error), Some(WsError::Tls(_))),
            "{error:?}"
        );
        // A wss client is still served.
        let client = transport(config(true));
        let (dialed, mut accepted) = connect(&client, &server, &mut listener).await;
        dialed.send(Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(accepted.recv().await.unwrap().unwrap(), &b"ok"[..]);
    })
    .await;
}

#[tokio::test]
async fn garbage_inside_an_upgraded_stream_from_another_source_is_refused() {
    guarded(async {
        let server = transport(config(false));
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let addr = listener.local_addr().clone();
        let prober = transport(config(false));
        let source = "127.0.0.7".parse().unwrap();
        let (mut reader, mut writer, local) =
            prober.connect_stream(&addr, Some(source)).await.unwrap();
        assert_eq!(local.host, "127.0.0.7");
        // A frame claiming 2^32 - 1 bytes: refused before any allocation.
        writer.write_all(&[0xff; 64]).await.unwrap();
        writer.flush().await.unwrap();
        let error = refused(&mut listener).await;
        assert!(
            matches!(error, Error::Protocol(ProtocolError::FrameTooLarge { .. })),
            "{error:?}"
        );
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "nothing answers garbage");
        still_serves(&server, &mut listener).await;
    })
    .await;
}

#[tokio::test]
async fn a_dialer_over_its_rate_gets_remote_limit_with_a_retry_time() {
    guarded(async {
        let mut config = config(false);
        config.limits = ConnectionLimits {
            max_new_connections_per_minute: 1,
            ..ConnectionLimits::unlimited()
        };
        let server = transport(config);
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let client = transport(self::config(false));
        // Within the allowance: served as usual.
        let (dialed, mut accepted) = connect(&client, &server, &mut listener).await;
        dialed.send(Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(accepted.recv().await.unwrap().unwrap(), &b"ok"[..]);
        // Over it, from the same source: a typed refusal naming the limit and the retry time.
        let err = client
            .dial(listener.local_addr(), Some(server.local_peer_id()))
            .await
            .expect_err("over the rate");
        println!("websocket refused dialer: Display: {err}");
        println!("websocket refused dialer: Debug: {err:?}");
        match &err {
            Error::RemoteLimit(bitcraps_transport_core::LimitRejection {
                limit: bitcraps_transport_core::LimitKind::NewConnectionRate,
                retry_after: Some(wait),
            }) if !wait.is_zero() => {}
            other => panic!("expected RemoteLimit(NewConnectionRate, Some(..)), got {other:?}"),
        }
        assert!(matches!(refused(&mut listener).await, Error::Limit(_)));
    })
    .await;
}
