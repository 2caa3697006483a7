//! Unit tests of the per-peer cap.

use super::*;
use crate::stats::{PeerStats, TransportStats};
use bitcraps_transport_core::Keypair;

fn peer(bytes: u64, delivered: u64) -> PeerStats {
    PeerStats {
        peer: Keypair::generate().peer_id(),
        traffic: TransportStats {
            bytes_received: bytes,
            connection_count: 1,
            ..TransportStats::default()
        },
        delivered,
        undelivered: 0,
        duplicates: 0,
        route_changes: 0,
        breaker_trips: 0,
        breakers_open: 0,
        srtt: Some(std::time::Duration::from_millis(3)),
    }
}

#[test]
fn the_busiest_peers_keep_their_series_and_the_rest_are_summed() {
    let peers = vec![
        peer(10, 1),
        peer(500, 2),
        peer(30, 4),
        peer(200, 8),
        peer(1, 16),
    ];
    let (kept, other) = cap_peers(peers.clone(), 2);
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].traffic.bytes_received, 500);
    assert_eq!(kept[1].traffic.bytes_received, 200);
    let (sum, n) = other.expect("three folded");
    assert_eq!(n, 3);
    assert_eq!(sum.delivered, 1 + 4 + 16);
    assert_eq!(sum.traffic.bytes_received, 10 + 30 + 1);
    assert_eq!(sum.traffic.connection_count, 3);
    assert_eq!(sum.srtt, None);
    let (kept, other) = cap_peers(peers, 5);
    assert_eq!(kept.len(), 5);
    assert!(other.is_none());
}

#[test]
fn a_cap_of_zero_folds_everyone() {
    let (kept, other) = cap_peers(vec![peer(1, 1), peer(2, 2)], 0);
    assert!(kept.is_empty());
    assert_eq!(other.map(|(s, n)| (s.delivered, n)), Some((3, 2)));
}
