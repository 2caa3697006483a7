//! The send queue's byte budget: it bounds queued bytes, every byte comes back as the driver
//! writes, and a send cancelled while it waits gives its bytes back.

use std::time::Duration;

use bytes::Bytes;

use super::{test_connection, ChannelConfig};
use crate::backend::{ConnectionIo, SendItem};
use crate::Connection;

fn connection(send_queue: usize, budget: usize) -> (Connection, ConnectionIo) {
    let config = ChannelConfig {
        max_message_size: 100,
        send_queue,
        send_buffer_bytes: budget,
        ..ChannelConfig::default()
    };
    test_connection(&config)
}

/// Takes what is queued, as a driver does, and reports it written.
fn drain(io: &mut ConnectionIo) -> usize {
    let mut n = 0;
    while let Ok(SendItem::Message(m)) = io.send_queue.try_recv() {
        io.state.record_sent(m.len());
        n += 1;
    }
    n
}

#[tokio::test(start_paused = true)]
async fn the_budget_bounds_queued_bytes_and_comes_back_when_written() {
    let (conn, mut io) = connection(100, 250);
    let sender = conn.sender();
    let hundred = Bytes::from(vec![0; 100]);
    assert!(sender.try_send(hundred.clone()).unwrap());
    assert!(sender.try_send(hundred.clone()).unwrap());
    // 200 of 250 bytes queued: another 100 does not fit, though the queue has room.
    assert!(!sender.try_send(hundred.clone()).unwrap());
    // Empty messages cost no budget.
    assert!(sender.try_send(Bytes::new()).unwrap());
    assert_eq!(drain(&mut io), 3);
    for _ in 0..10 {
        assert!(sender.try_send(hundred.clone()).unwrap());
        assert!(sender.try_send(hundred.clone()).unwrap());
        assert_eq!(drain(&mut io), 2);
    }
    // `ready` returns once a maximum message fits.
    assert!(sender.try_send(hundred.clone()).unwrap());
    assert!(sender.try_send(hundred.clone()).unwrap());
    let ready = tokio::time::timeout(Duration::from_secs(1), sender.ready()).await;
    assert!(ready.is_err(), "no room for 100 more bytes yet");
    drain(&mut io);
    sender.ready().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_send_gives_its_budget_back() {
    // Two queue slots, both taken: a third send gets its budget, then waits for a slot.
    let (conn, mut io) = connection(2, 250);
    let sender = conn.sender();
    let hundred = Bytes::from(vec![0; 100]);
    sender.send(hundred.clone()).await.unwrap();
    sender.send(Bytes::from(vec![0; 10])).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_secs(1), sender.send(hundred.clone()));
    assert!(
        waiting.await.is_err(),
        "the queue is full: the send waits, then is dropped"
    );
    assert_eq!(drain(&mut io), 2);
    // All 250 bytes are free again: two 100-byte messages fit. Had the cancelled send kept
    // its 100 bytes, only one would.
    assert!(sender.try_send(hundred.clone()).unwrap());
    assert!(sender.try_send(hundred.clone()).unwrap());
}
