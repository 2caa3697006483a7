//! One test per relay rule of `docs/mesh.md`, each failing if its rule is removed: never back out
//! of the arrival link, neighbour pruning (only by full relays), counter-based suppression,
//! following a learned route, and the configuration check that keeps packets from outliving
//! their dedup entries.

use std::time::{Duration, Instant};

use bitcraps_mesh::crypto::{seal_broadcast, seal_directed, seal_neighbours};
use bitcraps_mesh::{
    Accepted, Action, ConfigError, Keypair, LinkId, Mesh, MeshConfig, MessageId, PeerId,
};
use bytes::Bytes;

fn key(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

/// The peer behind link `l` in these tests.
fn peer(l: u64) -> Keypair {
    key(100 + l as u8)
}

/// A node with links 1..=4, each neighbour having announced `lists[l - 1]` as its neighbours.
fn node_with(lists: [&[PeerId]; 4], t0: Instant) -> Mesh {
    let mut m = Mesh::new(key(1), MeshConfig::default(), [1; 32]).unwrap();
    for l in 1..=4u64 {
        m.link_up(LinkId(l), peer(l).peer_id(), t0);
    }
    for l in 1..=4u64 {
        let hello = seal_neighbours(&peer(l), MessageId([l as u8; 16]), lists[l as usize - 1]);
        assert_eq!(
            m.handle_packet(LinkId(l), hello.encode(), t0),
            Ok(Accepted::Neighbours)
        );
    }
    m.handle_timeout(t0 + Duration::from_secs(1));
    while m.poll_action().is_some() {}
    m
}

/// Others: three peers that are none of this node's neighbours.
fn strangers() -> Vec<PeerId> {
    (40..43).map(|s| key(s).peer_id()).collect()
}

fn bcast(n: u8) -> Bytes {
    seal_broadcast(&key(9), MessageId([n; 16]), 8, Bytes::from_static(b"b"))
        .unwrap()
        .encode()
}

/// Runs the timers for 10 s and returns the links transmitted on.
fn relayed_on(m: &mut Mesh, from: Instant) -> Vec<u64> {
    let mut links = Vec::new();
    while let Some(at) = m.poll_timeout() {
        if at > from + Duration::from_secs(10) {
            break;
        }
        m.handle_timeout(at);
    }
    while let Some(a) = m.poll_action() {
        if let Action::Transmit { link, .. } = a {
            links.push(link.0);
        }
    }
    links.sort_unstable();
    links
}

#[test]
fn a_relay_never_goes_back_out_of_its_arrival_link() {
    let t0 = Instant::now();
    let s = strangers();
    let mut m = node_with([&s, &s, &s, &s], t0);
    let now = t0 + Duration::from_secs(2);
    m.handle_packet(LinkId(1), bcast(1), now).unwrap();
    assert_eq!(relayed_on(&mut m, now), [2, 3, 4]);
}

#[test]
fn a_relay_skips_neighbours_of_the_node_it_heard_from() {
    let t0 = Instant::now();
    let s = strangers();
    // Peer 1 lists peer 4 among its neighbours: peer 1 covers it.
    let covered = [s[0], s[1], peer(4).peer_id()];
    let mut m = node_with([&covered, &s, &s, &s], t0);
    let now = t0 + Duration::from_secs(2);
    m.handle_packet(LinkId(1), bcast(2), now).unwrap();
    assert_eq!(relayed_on(&mut m, now), [2, 3]);
}

#[test]
fn a_partial_copy_covers_nobody() {
    let t0 = Instant::now();
    let s = strangers();
    let covered = [s[0], s[1], peer(4).peer_id()];
    let mut m = node_with([&covered, &s, &s, &s], t0);
    let now = t0 + Duration::from_secs(2);
    // The same packet, but peer 1 says it sent this copy to us alone (a route, a store offer).
    let partial = bitcraps_mesh::wire::with_flag(&bcast(8), bitcraps_mesh::wire::FLAG_PARTIAL);
    m.handle_packet(LinkId(1), partial, now).unwrap();
    assert_eq!(relayed_on(&mut m, now), [2, 3, 4]);
}

#[test]
fn enough_copies_cancel_a_relay_but_fewer_do_not() {
    let t0 = Instant::now();
    let s = strangers();
    let mut m = node_with([&s, &s, &s, &s], t0);
    let now = t0 + Duration::from_secs(2);
    // Three copies (the threshold) before the delay ends: cancelled, link 4 gets nothing.
    for l in 1..=3 {
        let _ = m.handle_packet(LinkId(l), bcast(3), now);
    }
    assert_eq!(relayed_on(&mut m, now), Vec::<u64>::new());
    assert_eq!(m.stats().suppressed, 1);
    // Two copies: relayed on the links no copy came from.
    for l in 1..=2 {
        let _ = m.handle_packet(LinkId(l), bcast(4), now);
    }
    assert_eq!(relayed_on(&mut m, now), [3, 4]);
}

#[test]
fn a_suppressed_relay_still_serves_a_poorly_linked_neighbour() {
    let t0 = Instant::now();
    let s = strangers();
    // Peer 4 has a single neighbour (us): it depends on us.
    let mut m = node_with([&s, &s, &s, &[key(1).peer_id()]], t0);
    let now = t0 + Duration::from_secs(2);
    for l in 1..=3 {
        let _ = m.handle_packet(LinkId(l), bcast(5), now);
    }
    assert_eq!(relayed_on(&mut m, now), [4]);
}

#[test]
fn a_directed_packet_follows_the_learned_route() {
    let t0 = Instant::now();
    let s = strangers();
    let mut m = node_with([&s, &s, &s, &s], t0);
    let x = key(9);
    let now = t0 + Duration::from_secs(2);
    // A broadcast from X on link 2 teaches "X is one hop away via link 2".
    m.handle_packet(LinkId(2), bcast(6), now).unwrap();
    let _ = relayed_on(&mut m, now);
    let p = seal_directed(
        &key(30),
        MessageId([7; 16]),
        8,
        x.peer_id(),
        [3; 32],
        b"to x",
    )
    .unwrap();
    let later = now + Duration::from_secs(20);
    m.handle_packet(LinkId(1), p.encode(), later).unwrap();
    let mut now_sent = Vec::new();
    while let Some(Action::Transmit { link, .. }) = m.poll_action() {
        now_sent.push(link.0);
    }
    assert_eq!(now_sent, [2], "sent at once, on the route only");
    assert_eq!(
        relayed_on(&mut m, later),
        Vec::<u64>::new(),
        "and not flooded"
    );
    assert_eq!(m.memory().stored_packets, 0, "nor stored");
}

#[test]
fn settings_that_let_a_packet_outlive_its_dedup_entry_are_refused() {
    let mut config = MeshConfig::default();
    config.store.max_age = config.dedup_expiry;
    assert_eq!(
        Mesh::new(key(1), config, [0; 32]).err(),
        Some(ConfigError::StoreOutlivesDedup)
    );
}
