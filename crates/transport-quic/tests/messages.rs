//! Messages: order, mixed sizes across packet boundaries, sizes 0 / max / max+1 (both the local check and a remote that breaks it),
//! and graceful close with the reason seen by the remote.

mod common;

use bitcraps_transport_core::{
    Bytes, ChannelConfig, CloseReason, Error, ProtocolError, SharedLimiter, Transport,
};
use common::{guard, pair, transport, transport_with};

#[tokio::test]
async fn ten_thousand_messages_arrive_in_order() {
    let server = transport();
    let client = transport();
    let (_l, dialed, mut accepted) = pair(&server, &client).await;
    const N: u32 = 10_000;
    let sender = dialed.sender();
    let send = tokio::spawn(async move {
        for i in 0..N {
            sender
                .send(Bytes::from(i.to_be_bytes().to_vec()))
                .await
                .unwrap();
        }
    });
    guard("receive", async {
        for i in 0..N {
            let m = accepted.recv().await.unwrap().unwrap();
            assert_eq!(m.as_ref(), i.to_be_bytes(), "message {i}");
        }
    })
    .await;
    send.await.unwrap();
    assert_eq!(accepted.stats().messages_received, u64::from(N));
    assert_eq!(dialed.stats().messages_sent, u64::from(N));
}

#[tokio::test]
async fn both_directions_carry_messages_at_once() {
    let server = transport();
    let client = transport();
    let (_l, mut dialed, mut accepted) = pair(&server, &client).await;
    let (a, b) = guard("exchange", async {
        tokio::join!(
            async {
                dialed.send("from dialer".into()).await.unwrap();
                dialed.recv().await.unwrap().unwrap()
            },
            async {
                accepted.send("from listener".into()).await.unwrap();
                accepted.recv().await.unwrap().unwrap()
            }
        )
    })
    .await;
    assert_eq!(a.as_ref(), b"from listener");
    assert_eq!(b.as_ref(), b"from dialer");
}

/// Frames smaller than, straddling and many times larger than a packet, back to back: each
/// arrives whole and byte for byte (the reader splits frames out of packet-sized chunks and
/// reassembles the ones that span several).
#[tokio::test]
async fn mixed_sizes_across_packet_boundaries_arrive_intact() {
    let channel = ChannelConfig {
        max_message_size: 200_000,
        ..ChannelConfig::default()
    };
    let server = transport_with(channel.clone(), SharedLimiter::unlimited());
    let client = transport_with(channel, SharedLimiter::unlimited());
    let (_l, dialed, mut accepted) = pair(&server, &client).await;
    const SIZES: [usize; 9] = [0, 1, 3, 4, 1000, 1200, 1500, 5000, 150_000];
    let message = |i: usize| -> Vec<u8> {
        let len = SIZES[i % SIZES.len()];
        (0..len).map(|j| ((i * 31 + j) % 251) as u8).collect()
    };
    const N: usize = 300;
    let sender = dialed.sender();
    let send = tokio::spawn(async move {
        for i in 0..N {
            sender.send(Bytes::from(message(i))).await.unwrap();
        }
    });
    guard("receive", async {
        for i in 0..N {
            let m = accepted.recv().await.unwrap().unwrap();
            assert_eq!(m.as_ref(), &message(i)[..], "message {i}");
        }
    })
    .await;
    send.await.unwrap();
}

#[tokio::test]
async fn sizes_zero_and_max_pass_and_max_plus_one_is_refused_locally() {
    let channel = ChannelConfig {
        max_message_size: 100_000,
        ..ChannelConfig::default()
    };
    let server = transport_with(channel.clone(), SharedLimiter::unlimited());
    let client = transport_with(channel, SharedLimiter::unlimited());
    let (_l, dialed, mut accepted) = pair(&server, &client).await;
    let max: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    match dialed.send(Bytes::from(vec![0u8; 100_001])).await {
        Err(Error::MessageTooLarge { len, max }) => assert_eq!((len, max), (100_001, 100_000)),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    // The connection is still usable.
    dialed.send(Bytes::new()).await.unwrap();
    dialed.send(Bytes::from(max.clone())).await.unwrap();
    guard("receive", async {
        assert_eq!(accepted.recv().await.unwrap().unwrap().len(), 0);
        assert_eq!(accepted.recv().await.unwrap().unwrap().as_ref(), &max[..]);
    })
    .await;
}

#[tokio::test]
async fn a_remote_frame_over_the_maximum_fails_the_connection_before_allocating() {
    let small = ChannelConfig {
        max_message_size: 1_000,
        ..ChannelConfig::default()
    };
    let large = ChannelConfig {
        max_message_size: 10_000,
        ..ChannelConfig::default()
    };
    let server = transport_with(small, SharedLimiter::unlimited());
    let client = transport_with(large, SharedLimiter::unlimited());
    let (mut listener, dialed, mut accepted) = pair(&server, &client).await;
    dialed.send(Bytes::from(vec![1u8; 1_000])).await.unwrap();
    dialed.send(Bytes::from(vec![2u8; 1_001])).await.unwrap();
    let first = guard("first", accepted.recv()).await.unwrap().unwrap();
    assert_eq!(first.len(), 1_000);
    match guard("second", accepted.recv()).await {
        Err(Error::Protocol(ProtocolError::FrameTooLarge { len, max })) => {
            assert_eq!((len, max), (1_001, 1_000));
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert_eq!(guard("end", accepted.recv()).await.unwrap(), None);
    guard("dialer sees the end", dialed.sender().closed()).await;
    assert!(matches!(
        dialed.close_reason(),
        Some(CloseReason::Failed(_))
    ));
    // The listener keeps serving.
    let again = transport();
    let addr = listener.local_addr().clone();
    let (ok, acc) = guard("next dial", async {
        tokio::join!(
            again.dial(&addr, Some(server.local_peer_id())),
            listener.accept_connection()
        )
    })
    .await;
    assert!(ok.is_ok() && acc.is_ok());
}

#[tokio::test]
async fn close_flushes_and_the_remote_sees_the_reason() {
    let server = transport();
    let client = transport();
    let (_l, dialed, mut accepted) = pair(&server, &client).await;
    for i in 0..100u8 {
        dialed.send(Bytes::from(vec![i; 1000])).await.unwrap();
    }
    let (closed, received) = guard("close", async {
        tokio::join!(dialed.close("game over"), async {
            let mut n = 0u8;
            while let Some(m) = accepted.recv().await.unwrap() {
                assert_eq!(m[0], n);
                n += 1;
            }
            n
        })
    })
    .await;
    closed.unwrap();
    assert_eq!(received, 100, "every message sent before close arrives");
    assert_eq!(
        accepted.close_reason(),
        Some(CloseReason::Remote("game over".into()))
    );
    assert_eq!(
        dialed.close_reason(),
        Some(CloseReason::Local("game over".into()))
    );
    assert!(matches!(
        dialed.send("late".into()).await,
        Err(Error::Closed(_))
    ));
    // Closing again succeeds at once.
    dialed.close("again").await.unwrap();
}

#[tokio::test]
async fn the_listener_side_can_close_too() {
    let server = transport();
    let client = transport();
    let (_l, mut dialed, accepted) = pair(&server, &client).await;
    accepted.send("last words".into()).await.unwrap();
    let (closed, got) = guard("close", async {
        tokio::join!(accepted.close("house closes"), async {
            let first = dialed.recv().await.unwrap();
            let end = dialed.recv().await.unwrap();
            (first, end)
        })
    })
    .await;
    closed.unwrap();
    assert_eq!(got.0.as_deref(), Some(&b"last words"[..]));
    assert_eq!(got.1, None);
    assert_eq!(
        dialed.close_reason(),
        Some(CloseReason::Remote("house closes".into()))
    );
}

#[tokio::test]
async fn simultaneous_close_succeeds_on_both_sides() {
    let server = transport();
    let client = transport();
    let (_l, dialed, accepted) = pair(&server, &client).await;
    let (a, b) = guard("close", async {
        tokio::join!(dialed.close("bye"), accepted.close("bye too"))
    })
    .await;
    a.unwrap();
    b.unwrap();
}

#[tokio::test]
async fn dropping_a_connection_closes_it_for_the_remote() {
    let server = transport();
    let client = transport();
    let (_l, dialed, mut accepted) = pair(&server, &client).await;
    drop(dialed);
    assert_eq!(guard("end", accepted.recv()).await.unwrap(), None);
    assert_eq!(
        accepted.close_reason(),
        Some(CloseReason::Remote("connection dropped".into()))
    );
}
