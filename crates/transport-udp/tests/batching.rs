//! Batched sends and coalesced receives: bursts of messages of mixed sizes (so segmented sends
//! are cut wherever the size changes) arrive whole, authentic and once, both ways.

mod common;

use std::collections::HashSet;

use bytes::Bytes;

use bitcraps_transport_core::Connection;
use common::{guard, pair};

/// Sizes in the order sent: runs of one size (one segmented send each) and changes of size.
const SIZES: [usize; 12] = [64, 64, 64, 1200, 1, 0, 1200, 1200, 700, 700, 5, 1200];
/// Messages per burst: well under what a loopback socket buffer holds, so none is lost.
const BURST: usize = 48;

fn message(i: usize) -> Bytes {
    let len = SIZES[i % SIZES.len()];
    let mut m = vec![(i % 251) as u8; len];
    if len >= 2 {
        m[..2].copy_from_slice(&(i as u16).to_be_bytes());
    }
    m.into()
}

/// Sends `bursts` bursts from `from` to `to`, each after the previous one was read whole.
async fn bursts(from: &Connection, to: &mut Connection, bursts: usize) {
    let mut seen = HashSet::new();
    for b in 0..bursts {
        for i in b * BURST..(b + 1) * BURST {
            from.send(message(i)).await.unwrap();
        }
        while seen.len() < (b + 1) * BURST {
            let m = guard(to.recv()).await.unwrap().expect("open");
            // Identify the message by its size and first bytes, then compare it whole.
            let i = (b * BURST..(b + 1) * BURST)
                .find(|&i| !seen.contains(&i) && message(i) == m)
                .expect("an authentic message of this burst, not seen before");
            seen.insert(i);
        }
    }
}

#[tokio::test]
async fn bursts_of_mixed_sizes_arrive_whole_and_once_both_ways() {
    let (_server, _client, _listener, mut conn, mut accepted) = pair().await;
    bursts(&conn, &mut accepted, 8).await;
    bursts(&accepted, &mut conn, 8).await;
    assert_eq!(conn.stats().messages_sent, 8 * BURST as u64);
    assert_eq!(accepted.stats().messages_sent, 8 * BURST as u64);
}
