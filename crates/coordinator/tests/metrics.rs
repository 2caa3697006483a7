//! The Prometheus export (`metrics` feature) over the memory backend: the scraped text says
//! what the traffic implies, per peer capped, totals kept after a session ends.
#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bitcraps_coordinator::metrics::{render, OTHER_PEER};
use bitcraps_coordinator::{CoordinatorEvent, Priority};
use bitcraps_transport_mem::MemoryNetwork;
use common::*;

/// The samples of a Prometheus text page: `name{labels}` to value. Fails on a malformed line.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line: series value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|e| panic!("{e}: {line}")),
        };
        assert!(
            out.insert(series.to_string(), value).is_none(),
            "twice: {line}"
        );
    }
    out
}

#[tokio::test(start_paused = true)]
async fn the_scrape_counts_what_was_sent() {
    let net = MemoryNetwork::new();
    let (a, mut ea, _, _) = mem_node(&net, config()).await;
    let (b, mut eb, b_addr, _) = mem_node(&net, config()).await;
    let (pa, pb) = (a.local_peer_id(), b.local_peer_id());
    a.connect_to_peer(pb, vec![b_addr.clone()]).await.unwrap();
    for i in 0..7 {
        a.send_to_peer(pb, msg(i), Priority::Bulk).await.unwrap();
    }
    for i in 0..7 {
        assert_eq!(num(&next_data(&mut eb, pa).await), i);
    }
    // The first health probe goes out at once: let its answer come back.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let m = parse(&render(&b, 32).unwrap());
    let peer = format!("{{peer=\"{pa}\"}}");
    assert_eq!(m["bitcraps_messages_delivered_total"], 7.0);
    assert_eq!(
        m[&format!("bitcraps_peer_messages_delivered_total{peer}")],
        7.0
    );
    assert_eq!(m[&format!("bitcraps_peer_connections{peer}")], 1.0);
    assert_eq!(m["bitcraps_peers"], 1.0);
    assert_eq!(m["bitcraps_peers_folded"], 0.0);
    let listener = format!("{{listener=\"{b_addr}\"}}");
    assert_eq!(
        m[&format!("bitcraps_listener_accepted_total{listener}")],
        1.0
    );
    assert_eq!(
        m["bitcraps_transport_connections{transport=\"memory\"}"],
        1.0
    );
    // Seven 4-byte payloads with 14-byte DATA headers at least.
    assert!(m["bitcraps_transport_bytes_received_total{transport=\"memory\"}"] >= 7.0 * 18.0);

    // A's side measured RTTs on the connection it dialed.
    let ma = parse(&render(&a, 32).unwrap());
    let count = ma["bitcraps_transport_rtt_seconds_count{transport=\"memory\"}"];
    assert!(count >= 1.0, "an RTT sample: {count}");
    assert_eq!(
        ma["bitcraps_transport_rtt_seconds_bucket{transport=\"memory\",le=\"+Inf\"}"],
        count
    );
    assert!(ma.contains_key(&format!("bitcraps_peer_srtt_seconds{{peer=\"{pb}\"}}")));

    // The session ends: its per-peer series go, the totals stay.
    a.disconnect(pb).await.unwrap();
    wait_for(&mut eb, |e| {
        matches!(e, CoordinatorEvent::Disconnected { .. }).then_some(())
    })
    .await;
    wait_for(&mut ea, |e| {
        matches!(e, CoordinatorEvent::Disconnected { .. }).then_some(())
    })
    .await;
    let m = parse(&render(&b, 32).unwrap());
    assert_eq!(m["bitcraps_messages_delivered_total"], 7.0);
    assert!(!m.contains_key(&format!("bitcraps_peer_messages_delivered_total{peer}")));
    assert_eq!(m["bitcraps_peers"], 0.0);
}

#[tokio::test(start_paused = true)]
async fn peers_past_the_cap_are_summed_into_other() {
    let net = MemoryNetwork::new();
    let (b, mut eb, b_addr, _) = mem_node(&net, config()).await;
    let pb = b.local_peer_id();
    let mut senders = Vec::new();
    for n in 0..3u32 {
        let (a, ea, _, _) = mem_node(&net, config()).await;
        a.connect_to_peer(pb, vec![b_addr.clone()]).await.unwrap();
        // Peer n sends n + 1 messages.
        for i in 0..=n {
            a.send_to_peer(pb, msg(i), Priority::Bulk).await.unwrap();
        }
        for _ in 0..=n {
            next_data(&mut eb, a.local_peer_id()).await;
        }
        senders.push((a, ea));
    }
    let m = parse(&render(&b, 1).unwrap());
    assert_eq!(m["bitcraps_peers"], 3.0);
    assert_eq!(m["bitcraps_peers_folded"], 2.0);
    assert_eq!(m["bitcraps_messages_delivered_total"], 6.0);
    let per_peer: Vec<(&String, &f64)> = m
        .iter()
        .filter(|(k, _)| k.starts_with("bitcraps_peer_messages_delivered_total{"))
        .collect();
    assert_eq!(per_peer.len(), 2, "one peer and other: {per_peer:?}");
    let other = m[&format!("bitcraps_peer_messages_delivered_total{{peer=\"{OTHER_PEER}\"}}")];
    let sum: f64 = per_peer.iter().map(|(_, v)| **v).sum();
    assert_eq!(sum, 6.0);
    assert!(other >= 1.0);
}
