//! The WebSocket backend end to end over loopback: handshake and identity over ws and wss,
//! wrong identity, order, sizes, close.

mod common;

use bitcraps_transport_core::{
    Bytes, CloseReason, Error, Keypair, PeerId, Transport, TransportAddress, TransportKind,
};
use common::*;

async fn handshake_and_identity(secure: bool) {
    let server = transport(config(secure));
    let client = transport(config(secure));
    let mut listener = server.listen(&listen_url(secure)).await.unwrap();
    let TransportAddress::WebSocket(local) = listener.local_addr().clone() else {
        panic!("not a websocket address");
    };
    assert_ne!(local.port, 0, "reports the real port");
    assert_eq!((local.secure, local.path.as_str()), (secure, "/bitcraps"));
    let (mut dialed, mut accepted) = connect(&client, &server, &mut listener).await;
    assert_eq!(dialed.remote_peer(), server.local_peer_id());
    assert_eq!(accepted.remote_peer(), client.local_peer_id());
    assert_eq!(dialed.info().kind, TransportKind::WebSocket);
    assert!(dialed.info().outbound && !accepted.info().outbound);
    dialed
        .send(Bytes::from_static(b"bet 5 on 7"))
        .await
        .unwrap();
    assert_eq!(accepted.recv().await.unwrap().unwrap(), &b"bet 5 on 7"[..]);
    // Three large messages queued at once: batches beyond one WebSocket message get split.
    let big = Bytes::from(vec![0x5a; 700 * 1024]);
    for _ in 0..3 {
        accepted.send(big.clone()).await.unwrap();
    }
    accepted
        .send(Bytes::from_static(b"rolled 7"))
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(dialed.recv().await.unwrap().unwrap() == big);
    }
    assert_eq!(dialed.recv().await.unwrap().unwrap(), &b"rolled 7"[..]);
    assert_eq!(listener.stats().accepted, 1);
}

#[tokio::test]
async fn handshake_and_identity_both_ways_over_ws() {
    guarded(handshake_and_identity(false)).await;
}

#[tokio::test]
async fn handshake_and_identity_both_ways_over_wss() {
    guarded(handshake_and_identity(true)).await;
}

#[tokio::test]
async fn a_wrong_expected_peer_fails_the_dial() {
    guarded(async {
        for secure in [false, true] {
            let server = transport(config(secure));
            let client = transport(config(secure));
            let listener = server.listen(&listen_url(secure)).await.unwrap();
            let other: PeerId = Keypair::generate().peer_id();
            let err = client
                .dial(listener.local_addr(), Some(other))
                .await
                .unwrap_err();
            match err {
                Error::PeerMismatch { expected, actual } => {
                    assert_eq!(expected, other);
                    assert_eq!(actual, server.local_peer_id());
                }
                other => panic!("expected PeerMismatch, got {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn ten_thousand_messages_arrive_in_order() {
    guarded(async {
        let server = transport(config(false));
        let client = transport(config(false));
        let mut listener = server.listen(&listen_url(false)).await.unwrap();
        let (dialed, mut accepted) = connect(&client, &server, &mut listener).await;
        let sender = dialed.sender();
        let send = tokio::spawn(async move {
            for i in 0u32..10_000 {
                let len = 4 + (i as usize * 7919) % 3000;
                let mut m = vec![(i % 251) as u8; len];
                m[..4].copy_from_slice(&i.to_be_bytes());
                sender.send(Bytes::from(m)).await.unwrap();
            }
        });
        for i in 0u32..10_000 {
            let m = accepted.recv().await.unwrap().expect("message");
            let len = 4 + (i as usize * 7919) % 3000;
            assert_eq!(m.len(), len, "message {i}");
            assert_eq!(u32::from_be_bytes(m[..4].try_into().unwrap()), i);
            assert!(m[4..].iter().all(|&b| b == (i % 251) as u8));
        }
        send.await.unwrap();
        assert_eq!(accepted.stats().messages_received, 10_000);
        drop(dialed);
    })
    .await;
}

#[tokio::test]
async fn the_maximum_message_passes_and_one_more_byte_is_refused() {
    guarded(async {
        for secure in [false, true] {
            let server = transport(config(secure));
            let client = transport(config(secure));
            let max = client.capabilities().max_message_size;
            let mut listener = server.listen(&listen_url(secure)).await.unwrap();
            let (dialed, mut accepted) = connect(&client, &server, &mut listener).await;
            let biggest = Bytes::from((0..max).map(|i| (i % 253) as u8).collect::<Vec<_>>());
            dialed.send(biggest.clone()).await.unwrap();
            assert!(accepted.recv().await.unwrap().unwrap() == biggest);
            let err = dialed
                .send(Bytes::from(vec![0; max + 1]))
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::MessageTooLarge { len, max: m } if len == max + 1 && m == max)
            );
            dialed
                .send(Bytes::from_static(b"still usable"))
                .await
                .unwrap();
            assert_eq!(
                accepted.recv().await.unwrap().unwrap(),
                &b"still usable"[..]
            );
        }
    })
    .await;
}

#[tokio::test]
async fn close_with_a_reason_is_seen_remotely() {
    guarded(async {
        for secure in [false, true] {
            let server = transport(config(secure));
            let client = transport(config(secure));
            let mut listener = server.listen(&listen_url(secure)).await.unwrap();
            let (dialed, mut accepted) = connect(&client, &server, &mut listener).await;
            dialed.send(Bytes::from_static(b"last bet")).await.unwrap();
            dialed.close("table closed").await.unwrap();
            assert_eq!(accepted.recv().await.unwrap().unwrap(), &b"last bet"[..]);
            assert_eq!(accepted.recv().await.unwrap(), None);
            assert_eq!(
                accepted.close_reason(),
                Some(CloseReason::Remote("table closed".into()))
            );
            assert_eq!(
                dialed.close_reason(),
                Some(CloseReason::Local("table closed".into()))
            );
        }
    })
    .await;
}

#[tokio::test]
async fn addresses_are_supported_only_with_the_matching_tls_config() {
    let plain = transport(config(false));
    let ws: TransportAddress = "ws://127.0.0.1:1/bitcraps".parse().unwrap();
    let wss: TransportAddress = "wss://127.0.0.1:1/bitcraps".parse().unwrap();
    let tcp: TransportAddress = "tcp://127.0.0.1:1".parse().unwrap();
    assert!(plain.supports(&ws));
    assert!(!plain.supports(&wss) && !plain.supports(&tcp));
    assert!(plain.dial(&wss, None).await.unwrap_err().is_unsupported());
    assert!(plain.listen(&tcp).await.err().unwrap().is_unsupported());
    let mut server_only = config(true);
    server_only.tls_client = None;
    let server_only = transport(server_only);
    assert!(server_only.supports(&wss));
    assert!(server_only
        .dial(&wss, None)
        .await
        .unwrap_err()
        .is_unsupported());
}
