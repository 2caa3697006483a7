//! Batched records through a real stream connection: order across BATCH and DATA records, the
//! batched receive path, and a close queued in the same drain as the messages before it.

use bitcraps_transport_core::{
    Bytes, CloseReason, Connection, Error, Keypair, Transport, TransportAddress,
};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};

async fn pair() -> (Connection, Connection) {
    let net = MemoryNetwork::new();
    let a = MemoryTransport::new(&net, Keypair::generate());
    let b = MemoryTransport::new(&net, Keypair::generate());
    let mut listener = b.listen(&TransportAddress::Memory(0)).await.unwrap();
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        a.dial(&addr, Some(b.local_peer_id())),
        listener.accept_connection()
    );
    (dialed.unwrap(), accepted.unwrap())
}

fn message(i: usize) -> Bytes {
    // Mostly tiny, some empty, some too big for a batch entry, one chunked over two records.
    let len = match i % 10 {
        0 => 0,
        7 => 70_000,
        9 => 65_517,
        _ => i % 97,
    };
    Bytes::from(vec![i as u8; len])
}

#[tokio::test]
async fn a_burst_of_mixed_sizes_arrives_in_order_through_recv_many() {
    let (dialed, accepted) = pair().await;
    let (_accepted_tx, mut rx) = accepted.split();
    let sender = dialed.sender();
    let count = 500;
    let writer = tokio::spawn(async move {
        for i in 0..count {
            sender.send(message(i)).await.unwrap();
        }
        sender
    });
    let mut got = Vec::new();
    while got.len() < count {
        let n = rx.recv_many(&mut got, 32).await.unwrap();
        assert!((1..=32).contains(&n), "recv_many returned {n}");
    }
    for (i, m) in got.iter().enumerate() {
        assert_eq!(*m, message(i), "message {i}");
    }
    let sender = writer.await.unwrap();
    assert_eq!(sender.stats().messages_sent, count as u64);
    sender.close("done").await.unwrap();
    assert_eq!(
        sender.stats().messages_unsent,
        0,
        "a graceful close wrote everything"
    );
    assert_eq!(rx.recv_many(&mut got, 8).await.unwrap(), 0);
    assert_eq!(rx.recv().await.unwrap(), None);
}

#[tokio::test]
async fn a_close_in_the_same_drain_goes_after_every_message_and_later_sends_fail() {
    let (dialed, mut accepted) = pair().await;
    let sender = dialed.sender();
    let queued: Vec<Bytes> = (0..50).map(|i| Bytes::from(vec![i as u8; i])).collect();
    // No await between these: the writer drains the messages and the close in one go.
    for m in &queued {
        assert!(sender.try_send(m.clone()).unwrap(), "room in the queue");
    }
    let mut close = Box::pin(sender.close("bye"));
    tokio::select! {
        biased;
        _ = &mut close => panic!("close cannot finish before the writer ran"),
        () = std::future::ready(()) => {}
    }
    // The close is queued: a message now is reported undelivered, never queued behind it.
    let late = Bytes::from_static(b"late");
    assert!(matches!(
        sender.try_send(late.clone()),
        Err(Error::Closed(CloseReason::Local(r))) if r == "bye"
    ));
    assert!(matches!(
        sender.send(late).await,
        Err(Error::Closed(CloseReason::Local(r))) if r == "bye"
    ));
    close.await.unwrap();
    for (i, m) in queued.iter().enumerate() {
        assert_eq!(
            accepted.recv().await.unwrap().as_ref(),
            Some(m),
            "message {i}"
        );
    }
    assert_eq!(accepted.recv().await.unwrap(), None, "then the clean close");
    assert_eq!(
        accepted.close_reason(),
        Some(CloseReason::Remote("bye".into()))
    );
    assert_eq!(dialed.stats().messages_sent, 50);
    // A second close of a closed connection succeeds at once.
    dialed.close("again").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_senders_and_a_close_lose_nothing_that_was_accepted() {
    let (dialed, mut accepted) = pair().await;
    let mut tasks = Vec::new();
    for sender_id in 0..4u8 {
        let sender = dialed.sender();
        tasks.push(tokio::spawn(async move {
            let mut accepted_count = 0u32;
            loop {
                let m = Bytes::from([&[sender_id][..], &accepted_count.to_be_bytes()].concat());
                match sender.send(m).await {
                    Ok(()) => accepted_count += 1,
                    Err(Error::Closed(_)) => return accepted_count,
                    Err(other) => panic!("unexpected {other}"),
                }
            }
        }));
    }
    // Let the senders get going, then close while they are still sending; the remote keeps
    // reading meanwhile (a close waits for its acknowledgement, behind the queued messages).
    let first = accepted.recv().await.unwrap().unwrap();
    let reader = tokio::spawn(async move {
        let mut got = vec![first];
        while let Some(m) = accepted.recv().await.unwrap() {
            got.push(m);
        }
        got
    });
    dialed.close("race").await.unwrap();
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    let mut next = [0u32; 4];
    for m in reader.await.unwrap() {
        let id = usize::from(m[0]);
        let n = u32::from_be_bytes([m[1], m[2], m[3], m[4]]);
        assert_eq!(n, next[id], "sender {id} in order, nothing skipped");
        next[id] += 1;
    }
    assert_eq!(
        next.to_vec(),
        counts,
        "every accepted message arrived, no other"
    );
}
