//! The pre-handshake refusal on TCP (`docs/protocol.md`, section 3): a dialer over its source's
//! rate gets the 10-byte refusal frame and a typed `Error::RemoteLimit` naming the limit and
//! when to retry, while dialers within their allowance are unaffected.

use std::time::Duration;

use bitcraps_transport_core::refusal::{decode_refusal, REFUSAL_FRAME_LEN};
use bitcraps_transport_core::{
    ConnectionLimits, Error, Inbound, Keypair, LimitKind, LimitRejection, Listener, Transport,
};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Guards against hangs only; no assertion depends on it.
const GUARD: Duration = Duration::from_secs(30);

fn rate_limited(per_minute: u32) -> TcpTransport {
    TcpTransport::with_config(
        Keypair::generate(),
        TcpConfig {
            limits: ConnectionLimits {
                max_new_connections_per_minute: per_minute,
                ..ConnectionLimits::unlimited()
            },
            ..TcpConfig::default()
        },
    )
}

fn client() -> TcpTransport {
    TcpTransport::with_config(
        Keypair::generate(),
        TcpConfig {
            limits: ConnectionLimits::unlimited(),
            ..TcpConfig::default()
        },
    )
}

async fn next_refusal(listener: &mut Box<dyn Listener>) -> Error {
    loop {
        match listener.accept().await.unwrap() {
            Inbound::Refused { error, .. } => return error,
            Inbound::Connection(_) => {}
            _ => panic!("unexpected inbound event"),
        }
    }
}

#[tokio::test]
async fn a_dialer_over_its_rate_gets_remote_limit_with_a_retry_time() {
    tokio::time::timeout(GUARD, async {
        let server = rate_limited(1);
        let mut listener = server
            .listen(&"tcp://127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().clone();
        let dialer = client();
        // The first dial uses the source's allowance and is served as usual.
        let first = dialer.dial(&addr, Some(server.local_peer_id())).await;
        let first = first.expect("a dial within the allowance is unaffected");
        let accepted = listener.accept_connection().await.unwrap();
        first.send("hi".into()).await.unwrap();
        drop(accepted);
        // The second, from the same source, is refused before the handshake and told why.
        let err = dialer
            .dial(&addr, Some(server.local_peer_id()))
            .await
            .expect_err("over the rate");
        println!("tcp refused dialer: Display: {err}");
        println!("tcp refused dialer: Debug: {err:?}");
        match &err {
            Error::RemoteLimit(LimitRejection {
                limit: LimitKind::NewConnectionRate,
                retry_after: Some(wait),
            }) if !wait.is_zero() && *wait <= Duration::from_secs(60) => {}
            other => panic!("expected RemoteLimit(NewConnectionRate, Some(..)), got {other:?}"),
        }
        assert!(matches!(
            next_refusal(&mut listener).await,
            Error::Limit(LimitRejection {
                limit: LimitKind::NewConnectionRate,
                ..
            })
        ));
        // A remote refusal does not put the destination into the dialer's own backoff.
        let again = dialer.dial(&addr, None).await.expect_err("still over");
        assert!(matches!(again, Error::RemoteLimit(_)), "{again:?}");
    })
    .await
    .expect("test hung");
}

#[tokio::test]
async fn the_refusal_is_ten_bytes_then_the_end_of_stream() {
    tokio::time::timeout(GUARD, async {
        let server = rate_limited(1);
        let listener = server
            .listen(&"tcp://127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let bitcraps_transport_core::TransportAddress::Tcp(target) = *listener.local_addr() else {
            unreachable!()
        };
        // Uses the allowance (a stalled handshake), then a raw connection is refused.
        let _held = TcpStream::connect(target).await.unwrap();
        let mut raw = TcpStream::connect(target).await.unwrap();
        // A message 1 is sent as a dialer would; it is read and discarded.
        raw.write_all(&[0u8; 37]).await.unwrap();
        let mut got = Vec::new();
        raw.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), REFUSAL_FRAME_LEN, "{got:02x?}");
        assert_eq!(&got[..5], &[0, 0, 0, 6, 0xFF]);
        let rejection = decode_refusal(&got[4..]).unwrap();
        assert_eq!(rejection.limit, LimitKind::NewConnectionRate);
        drop(listener);
    })
    .await
    .expect("test hung");
}
