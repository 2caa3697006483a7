//! How a connection ends from the sender's side: `close` when the writer has already stopped
//! waits for the end instead of failing at once with a timeout that never happened, and the
//! messages the writer never reached are reported (`ConnectionStats::messages_unsent`).

use std::time::Duration;

use super::{test_connection, ChannelConfig};
use crate::backend::ConnectionIo;
use crate::{Connection, Error};

fn connection() -> (Connection, ConnectionIo) {
    test_connection(&ChannelConfig::default())
}

#[tokio::test(start_paused = true)]
async fn a_close_after_the_writer_stopped_waits_for_the_end_of_the_connection() {
    let (conn, io) = connection();
    let ConnectionIo {
        send_queue, state, ..
    } = io;
    // The remote closed first: the writer answered and stopped; the task ends a moment later.
    state.remote_closed("bye".into());
    drop(send_queue);
    let end = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        state.finish();
    });
    assert!(conn.close("done").await.is_ok());
    end.await.unwrap();
    assert!(conn.sender().is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_close_whose_connection_never_ends_times_out_after_the_close_timeout() {
    let (conn, io) = connection();
    drop(io.send_queue);
    let started = tokio::time::Instant::now();
    match conn.close("done").await {
        Err(Error::Timeout { operation, after }) => {
            assert_eq!(operation, "close");
            assert_eq!(started.elapsed(), after);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    drop(io.state);
}

#[tokio::test(start_paused = true)]
async fn messages_the_writer_never_reached_are_counted_unsent() {
    let (conn, mut io) = connection();
    for m in ["a", "b", "c"] {
        conn.send(bytes::Bytes::from_static(m.as_bytes()))
            .await
            .unwrap();
    }
    assert_eq!(conn.stats().messages_unsent, 3, "queued, not yet written");
    // The writer writes one, then the remote closes and the writer stops.
    let Some(crate::backend::SendItem::Message(first)) = io.send_queue.recv().await else {
        panic!("a message first");
    };
    io.state.record_sent(first.len());
    io.state.remote_closed("gone".into());
    drop(io.send_queue);
    io.state.finish();
    let stats = conn.stats();
    assert_eq!((stats.messages_sent, stats.messages_unsent), (1, 2));
    assert!(conn.send(bytes::Bytes::from_static(b"d")).await.is_err());
    assert_eq!(
        conn.stats().messages_unsent,
        2,
        "a refused send is not counted"
    );
}
