//! Unit tests of the byte-stream adapter against a raw tungstenite peer over an in-memory
//! duplex pipe.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::*;

const GUARD: Duration = Duration::from_secs(20);

fn config() -> WebSocketConfig {
    crate::WsConfig::default().websocket_config()
}

/// Our adapter (client role) and a raw tungstenite peer (server role).
async fn pair() -> (WsReader, WsWriter, WebSocketStream<DuplexStream>) {
    pair_with_pipe(256 * 1024).await
}

async fn pair_with_pipe(pipe: usize) -> (WsReader, WsWriter, WebSocketStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(pipe);
    let ours = WebSocketStream::from_raw_socket(a, Role::Client, Some(config())).await;
    // The raw peer has tungstenite's defaults (its write buffer is not bounded like ours).
    let raw = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
    let (reader, writer) = byte_stream(ours);
    (reader, writer, raw)
}

async fn guarded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("test hung")
}

#[tokio::test]
async fn writes_become_binary_messages_split_at_the_limit() {
    guarded(async {
        let (_reader, mut writer, mut raw) = pair().await;
        writer.write_all(b"roll").await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(
            raw.next().await.unwrap().unwrap(),
            Message::Binary(Bytes::from_static(b"roll"))
        );
        let big: Vec<u8> = (0..WRITE_CHUNK * 5 / 2).map(|i| i as u8).collect();
        let write = async {
            writer.write_all(&big).await.unwrap();
            writer.flush().await.unwrap();
        };
        let read = async {
            let mut got = Vec::new();
            let mut sizes = Vec::new();
            while got.len() < big.len() {
                match raw.next().await.unwrap().unwrap() {
                    Message::Binary(b) => {
                        sizes.push(b.len());
                        got.extend_from_slice(&b);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (got, sizes)
        };
        let ((), (got, sizes)) = tokio::join!(write, read);
        assert!(got == big, "payload differs");
        assert!(sizes.iter().all(|&s| s <= WRITE_CHUNK), "{sizes:?}");
        assert_eq!(sizes.len(), 3, "{sizes:?}");
    })
    .await;
}

#[tokio::test]
async fn reads_concatenate_payloads_and_pings_are_answered() {
    guarded(async {
        let (mut reader, _writer, mut raw) = pair().await;
        raw.send(Message::Binary(Bytes::from_static(b"dice ")))
            .await
            .unwrap();
        raw.send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        raw.send(Message::Binary(Bytes::new())).await.unwrap();
        raw.send(Message::Binary(Bytes::from_static(b"roll")))
            .await
            .unwrap();
        let mut buf = [0u8; 9];
        reader.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"dice roll");
        assert_eq!(
            raw.next().await.unwrap().unwrap(),
            Message::Pong(Bytes::from_static(b"p"))
        );
    })
    .await;
}

#[tokio::test]
async fn a_text_message_is_a_typed_error_and_closes_with_1003() {
    guarded(async {
        let (mut reader, writer, mut raw) = pair().await;
        raw.send(Message::text("hello")).await.unwrap();
        let err = reader.read_u8().await.unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<WsError>());
        assert_eq!(inner, Some(&WsError::TextMessage));
        drop((reader, writer));
        match raw.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Unsupported),
            other => panic!("expected a close, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn the_remote_close_is_eof_and_writes_then_fail() {
    guarded(async {
        let (mut reader, mut writer, mut raw) = pair().await;
        raw.send(Message::Binary(Bytes::from_static(b"x")))
            .await
            .unwrap();
        raw.close(None).await.unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"x");
        // tungstenite refuses to send after the remote's close.
        let attempt = async {
            writer.write_all(b"late").await?;
            writer.flush().await
        };
        assert!(attempt.await.is_err());
    })
    .await;
}

#[tokio::test]
async fn shutdown_sends_close_1000_and_reading_goes_on_until_the_remote_closes() {
    guarded(async {
        let (mut reader, mut writer, mut raw) = pair().await;
        writer.write_all(b"bye").await.unwrap();
        writer.flush().await.unwrap();
        writer.shutdown().await.unwrap();
        assert!(writer.write_all(b"more").await.is_err(), "shut down");
        // The remote answers before it reads our close (as the core's close record does).
        raw.send(Message::Binary(Bytes::from_static(b"ack")))
            .await
            .unwrap();
        let mut buf = [0u8; 3];
        reader.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ack");
        assert_eq!(
            raw.next().await.unwrap().unwrap(),
            Message::Binary(Bytes::from_static(b"bye"))
        );
        match raw.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("expected a close, got {other:?}"),
        }
        // The remote's tungstenite sends its reply as it goes on reading; we see the end.
        let (eof, end) = tokio::join!(reader.read(&mut buf), raw.next());
        assert_eq!(eof.unwrap(), 0);
        assert!(end.is_none(), "{end:?}");
    })
    .await;
}

#[tokio::test]
async fn a_failed_lazy_upgrade_fails_both_halves() {
    guarded(async {
        let upgrade =
            async { Err::<WebSocketStream<DuplexStream>, _>(WsError::ClosedDuringUpgrade) };
        let (mut reader, mut writer) = lazy(upgrade);
        let err = reader.read_u8().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(writer.write_all(b"x").await.is_err());
        assert!(reader.read_u8().await.is_err());
    })
    .await;
}

#[tokio::test]
async fn a_lazy_upgrade_runs_on_the_first_read_and_hands_over_the_writer() {
    guarded(async {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let upgrade = async move {
            Ok(WebSocketStream::from_raw_socket(a, Role::Server, Some(config())).await)
        };
        let (mut reader, mut writer) = lazy(upgrade);
        let mut raw = WebSocketStream::from_raw_socket(b, Role::Client, Some(config())).await;
        raw.send(Message::Binary(Bytes::from_static(b"m1")))
            .await
            .unwrap();
        let mut buf = [0u8; 2];
        reader.read_exact(&mut buf).await.unwrap();
        writer.write_all(b"m2").await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(
            raw.next().await.unwrap().unwrap(),
            Message::Binary(Bytes::from_static(b"m2"))
        );
    })
    .await;
}

#[tokio::test]
async fn an_oversized_message_is_a_typed_error_and_closes_with_1009() {
    guarded(async {
        // A pipe big enough to hold the whole message, so the raw peer's send completes.
        let (mut reader, writer, mut raw) = pair_with_pipe(4 * crate::MAX_WS_MESSAGE).await;
        let too_big = Bytes::from(vec![1u8; crate::MAX_WS_MESSAGE + 1]);
        let send = raw.send(Message::Binary(too_big));
        let read = reader.read_u8();
        let (sent, read) = tokio::join!(send, read);
        // Only the read side matters here.
        let _ = sent;
        let err = read.unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<WsError>());
        assert!(matches!(inner, Some(WsError::Protocol(_))), "{err:?}");
        drop((reader, writer));
        match raw.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Size),
            other => panic!("expected a close, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn a_link_cut_without_a_close_frame_is_eof() {
    guarded(async {
        let (mut reader, _writer, mut raw) = pair().await;
        raw.send(Message::Binary(Bytes::from_static(b"half")))
            .await
            .unwrap();
        drop(raw);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"half");
    })
    .await;
}
