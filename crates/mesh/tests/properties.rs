//! Property tests of the mesh engine's four promises: no packet is delivered twice to an
//! application; none travels past its TTL; a forged, altered or replayed packet is never
//! delivered or relayed; memory stays within the configured caps under any input.

use std::time::{Duration, Instant};

use bitcraps_mesh::crypto::{seal_broadcast, seal_directed};
use bitcraps_mesh::{
    Accepted, Action, Destination, Keypair, LinkId, Mesh, MeshConfig, MessageId, PacketError,
    PeerId, StoreLimits,
};
use bytes::Bytes;
use proptest::prelude::*;

fn key(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

fn node(seed: u8, config: MeshConfig) -> Mesh {
    Mesh::new(key(seed), config, [seed; 32]).expect("valid config")
}

/// What a node output: (deliveries, transmissions).
type Outputs = (Vec<(PeerId, MessageId)>, Vec<(LinkId, Bytes)>);

/// Drains the actions.
fn drain(mesh: &mut Mesh) -> Outputs {
    let (mut d, mut t) = (Vec::new(), Vec::new());
    while let Some(a) = mesh.poll_action() {
        match a {
            Action::Deliver { origin, id, .. } => d.push((origin, id)),
            Action::Transmit { link, bytes } => t.push((link, bytes)),
        }
    }
    (d, t)
}

/// Runs every timer up to `until`, collecting the actions.
fn run_timers(mesh: &mut Mesh, until: Instant) -> Outputs {
    let (mut d, mut t) = drain(mesh);
    while let Some(at) = mesh.poll_timeout() {
        if at > until {
            break;
        }
        mesh.handle_timeout(at);
        let (d2, t2) = drain(mesh);
        d.extend(d2);
        t.extend(t2);
    }
    (d, t)
}

fn broadcast(origin: &Keypair, n: u8, ttl: u8) -> Bytes {
    seal_broadcast(origin, MessageId([n; 16]), ttl, Bytes::from(vec![n; 8]))
        .unwrap()
        .encode()
}

/// A copy of `bytes` with new TTL and hops (what relays may legitimately change).
fn relayed(bytes: &Bytes, ttl: u8, hops: u8) -> Bytes {
    bitcraps_mesh::wire::with_relay_fields(bytes, ttl, hops, 0)
}

/// A node with links 1..=3 to peers 101..=103, after their hellos were drained.
fn linked_node(config: MeshConfig, t0: Instant) -> Mesh {
    let mut m = node(1, config);
    for l in 1..=3u8 {
        m.link_up(LinkId(u64::from(l)), key(100 + l).peer_id(), t0);
    }
    let _ = run_timers(&mut m, t0 + Duration::from_secs(1));
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Copies of the same packets, on any link, with any TTL/hops, in any order and at any time
    /// within the dedup window, are delivered once each. Fails without the duplicate cache.
    #[test]
    fn no_packet_is_delivered_twice(
        feeds in prop::collection::vec((0u8..4, 1u64..=3, 0u8..8, 0u8..4, 0u64..100_000), 1..60)
    ) {
        let t0 = Instant::now();
        let mut m = linked_node(MeshConfig::default(), t0);
        let origins = [key(50), key(51)];
        let mut delivered = Vec::new();
        for (msg, link, ttl, hops, ms) in feeds {
            let origin = &origins[usize::from(msg % 2)];
            let bytes = relayed(&broadcast(origin, msg, 8), ttl, hops);
            let now = t0 + Duration::from_secs(1) + Duration::from_millis(ms);
            let _ = m.handle_packet(LinkId(link), bytes, now);
            let (d, _) = run_timers(&mut m, now);
            delivered.extend(d);
        }
        let mut unique = delivered.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), delivered.len(), "a packet was delivered twice");
    }

    /// On a chain 0 - 1 - ... - 9, a broadcast with TTL t from node 0 reaches exactly nodes
    /// 1..=t+1, and every relayed copy has a smaller TTL and the same TTL + hops. Fails without
    /// the TTL rule.
    #[test]
    fn no_packet_travels_past_its_ttl(ttl in 0u8..10) {
        let n = 10usize;
        let config = MeshConfig { max_ttl: ttl.max(1), ..MeshConfig::default() };
        let t0 = Instant::now();
        let mut nodes: Vec<Mesh> = (0..n).map(|i| node(i as u8 + 1, config.clone())).collect();
        let ids: Vec<PeerId> = nodes.iter().map(Mesh::peer_id).collect();
        // Link i - i+1 is LinkId(i) at both ends.
        for i in 0..n - 1 {
            nodes[i].link_up(LinkId(i as u64), ids[i + 1], t0);
            nodes[i + 1].link_up(LinkId(i as u64), ids[i], t0);
        }
        // Deliver packets hop by hop until the network is quiet.
        let packet = broadcast(&key(1), 9, ttl);
        let mut inflight: Vec<(usize, LinkId, Bytes)> = vec![(1, LinkId(0), packet)];
        let mut reached = vec![false; n];
        let mut now = t0 + Duration::from_secs(1);
        for _round in 0..200 {
            now += Duration::from_secs(1);
            let mut next = Vec::new();
            for (to, link, bytes) in inflight.drain(..) {
                let before = bitcraps_mesh::Packet::decode(&bytes).unwrap();
                prop_assert!(before.destination == Destination::Neighbours || before.ttl <= ttl && u16::from(before.ttl) + u16::from(before.hops) == u16::from(ttl));
                let _ = nodes[to].handle_packet(link, bytes, now);
            }
            for (i, m) in nodes.iter_mut().enumerate() {
                let (d, t) = run_timers(m, now);
                if !d.is_empty() { reached[i] = true; }
                for (link, bytes) in t {
                    let to = if link.0 as usize == i { i + 1 } else { i - 1 };
                    next.push((to, link, bytes));
                }
            }
            if next.is_empty() && nodes.iter().all(|m| m.poll_timeout().is_none()) { break; }
            inflight = next;
        }
        for (i, r) in reached.iter().enumerate().skip(1) {
            prop_assert_eq!(*r, i <= usize::from(ttl) + 1, "node {} reached = {}", i, r);
        }
    }

    /// A valid packet with one byte of its signed part changed, or signed by another key than
    /// its origin, is refused: no delivery, no relay, ever. Fails without signature checks.
    #[test]
    fn forged_or_altered_packets_are_never_delivered_or_relayed(
        at in 0usize..400, flip in 1u8..=255, directed in any::<bool>()
    ) {
        let t0 = Instant::now();
        let mut m = linked_node(MeshConfig::default(), t0);
        let origin = key(60);
        let good = if directed {
            seal_directed(&origin, MessageId([3; 16]), 8, key(102).peer_id(), [5; 32], b"bet 5").unwrap().encode()
        } else {
            broadcast(&origin, 3, 8)
        };
        // Bytes 2, 3 and 4 (TTL, hops, flags) are not signed; everything else is.
        let at = at % good.len();
        prop_assume!(!(2..5).contains(&at));
        let mut bad = good.to_vec();
        bad[at] ^= flip;
        let now = t0 + Duration::from_secs(1);
        let result = m.handle_packet(LinkId(1), Bytes::from(bad), now);
        prop_assert!(result.is_err(), "altered packet accepted: {:?}", result);
        // A forgery: the origin field says key(60), the signature is key(61)'s.
        let mut forged = seal_broadcast(&key(61), MessageId([4; 16]), 8, Bytes::from_static(b"x")).unwrap();
        forged.origin = origin.peer_id();
        prop_assert_eq!(m.handle_packet(LinkId(2), forged.encode(), now), Err(PacketError::BadSignature));
        let (d, t) = run_timers(&mut m, now + Duration::from_secs(10));
        prop_assert!(d.is_empty() && t.is_empty());
        // The genuine packet is still accepted afterwards: forgeries poison nothing.
        prop_assert_eq!(m.handle_packet(LinkId(3), good, now), Ok(Accepted::New));
    }

    /// A replay of an accepted packet (any TTL/hops, any link) after its relay ran produces
    /// nothing at all. Fails without the duplicate cache.
    #[test]
    fn replayed_packets_are_never_delivered_or_relayed(
        replays in prop::collection::vec((1u64..=3, 0u8..8, 0u8..4, 1u64..250_000), 1..20)
    ) {
        let t0 = Instant::now();
        let mut m = linked_node(MeshConfig::default(), t0);
        let good = broadcast(&key(70), 7, 8);
        let now = t0 + Duration::from_secs(1);
        prop_assert_eq!(m.handle_packet(LinkId(1), good.clone(), now), Ok(Accepted::New));
        let (d, t) = run_timers(&mut m, now + Duration::from_secs(1));
        prop_assert_eq!(d.len(), 1);
        prop_assert!(t.len() <= 2, "relayed on at most the two other links");
        for (link, ttl, hops, ms) in replays {
            let at = now + Duration::from_secs(1) + Duration::from_millis(ms);
            let r = m.handle_packet(LinkId(link), relayed(&good, ttl, hops), at);
            prop_assert!(matches!(r, Ok(Accepted::Duplicate) | Err(PacketError::Ttl { .. })), "{:?}", r);
            let (d, t) = run_timers(&mut m, at + Duration::from_secs(1));
            prop_assert!(d.is_empty() && t.is_empty(), "a replay was delivered or relayed");
        }
    }

    /// Under any sequence of inputs (links up and down, packets from many origins, directed
    /// packets for unknown destinations, garbage, sends, undrained actions), every bounded part
    /// stays within its cap. Fails if any cap is not enforced.
    #[test]
    fn memory_stays_within_the_caps(
        ops in prop::collection::vec((0u8..7, any::<u8>(), any::<u8>(), 0u64..2_000), 1..150)
    ) {
        let config = MeshConfig {
            dedup_capacity: 16,
            dedup_per_origin: 5,
            route_capacity: 4,
            max_pending_relays: 3,
            max_queued_actions: 10,
            store: StoreLimits {
                max_packets: 5,
                max_bytes: 1500,
                max_packets_per_origin: 2,
                max_bytes_per_origin: 700,
                max_age: Duration::from_secs(30),
            },
            ..MeshConfig::default()
        };
        let t0 = Instant::now();
        let mut m = node(1, config.clone());
        let mut now = t0;
        for (op, a, b, dt) in ops {
            now += Duration::from_millis(dt);
            let link = LinkId(u64::from(a % 6));
            match op {
                0 => m.link_up(link, key(100 + a % 6).peer_id(), now),
                1 => m.link_down(link, now),
                2 => { let _ = m.handle_packet(link, broadcast(&key(20 + b % 12), a, 8), now); }
                3 => {
                    let dest = key(200 + a % 10).peer_id();
                    let p = seal_directed(&key(20 + b % 12), MessageId([a; 16]), 8, dest, [b; 32], &[0u8; 200]).unwrap();
                    let _ = m.handle_packet(link, p.encode(), now);
                }
                4 => { let _ = m.handle_packet(link, Bytes::from(vec![a; usize::from(b)]), now); }
                5 => {
                    let dest = if a % 2 == 0 { Destination::Broadcast } else { Destination::Peer(key(200 + b % 10).peer_id()) };
                    let _ = m.send(dest, Bytes::from(vec![1u8; usize::from(b)]), now);
                }
                _ => {
                    m.handle_timeout(now);
                    if a % 3 == 0 { let _ = drain(&mut m); }
                }
            }
            let u = m.memory();
            let s = config.store;
            prop_assert!(u.dedup_entries <= config.dedup_capacity, "{:?}", u);
            prop_assert!(u.dedup_entries_one_origin <= config.dedup_per_origin, "{:?}", u);
            prop_assert!(u.routes <= config.route_capacity, "{:?}", u);
            prop_assert!(u.pending_relays <= config.max_pending_relays, "{:?}", u);
            prop_assert!(u.queued_actions <= config.max_queued_actions, "{:?}", u);
            prop_assert!(u.stored_packets <= s.max_packets && u.stored_bytes <= s.max_bytes, "{:?}", u);
            prop_assert!(u.stored_packets_one_origin <= s.max_packets_per_origin, "{:?}", u);
            prop_assert!(u.stored_bytes_one_origin <= s.max_bytes_per_origin, "{:?}", u);
        }
    }
}

/// A directed packet for a peer out of reach is stored, and delivered once when a link to it
/// comes up; a second link does not deliver it again.
#[test]
fn store_and_forward_delivers_once_when_a_path_appears() {
    let t0 = Instant::now();
    let (mut a, mut c) = (
        node(1, MeshConfig::default()),
        node(3, MeshConfig::default()),
    );
    a.link_up(LinkId(1), key(2).peer_id(), t0);
    a.send(
        Destination::Peer(c.peer_id()),
        Bytes::from_static(b"pay"),
        t0,
    )
    .unwrap();
    let _ = drain(&mut a);
    assert_eq!(a.memory().stored_packets, 1);
    let mut delivered = 0;
    for link in [7u64, 8] {
        let now = t0 + Duration::from_secs(link);
        a.link_up(LinkId(link), c.peer_id(), now);
        c.link_up(LinkId(link), a.peer_id(), now);
        let (_, t) = drain(&mut a);
        for (l, bytes) in t.into_iter().filter(|(l, _)| l.0 == link) {
            let _ = c.handle_packet(l, bytes, now);
        }
        delivered += drain(&mut c).0.len();
    }
    assert_eq!(delivered, 1);
    assert_eq!(
        a.memory().stored_packets,
        0,
        "handed to its destination, no longer held"
    );
}

/// A directed payload reaches its destination decrypted; a relay sees only ciphertext.
#[test]
fn relays_carry_directed_payloads_they_cannot_read() {
    let t0 = Instant::now();
    let mut a = node(1, MeshConfig::default());
    let mut b = node(2, MeshConfig::default());
    let mut c = node(3, MeshConfig::default());
    a.link_up(LinkId(1), b.peer_id(), t0);
    b.link_up(LinkId(1), a.peer_id(), t0);
    b.link_up(LinkId(2), c.peer_id(), t0);
    c.link_up(LinkId(2), b.peer_id(), t0);
    let _ = (drain(&mut a), drain(&mut b), drain(&mut c));
    let secret = b"seat 3 wins 40 chips";
    a.send(
        Destination::Peer(c.peer_id()),
        Bytes::from_static(secret),
        t0,
    )
    .unwrap();
    let now = t0 + Duration::from_secs(1);
    for (l, bytes) in drain(&mut a).1 {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret));
        let _ = b.handle_packet(l, bytes, now);
    }
    let (d, t) = run_timers(&mut b, now + Duration::from_secs(1));
    assert!(d.is_empty(), "the relay delivered nothing");
    let mut got = Vec::new();
    for (l, bytes) in t.into_iter().filter(|(l, _)| l.0 == 2) {
        let _ = c.handle_packet(l, bytes, now);
        while let Some(action) = c.poll_action() {
            if let Action::Deliver { payload, .. } = action {
                got.push(payload);
            }
        }
    }
    assert_eq!(got, vec![Bytes::from_static(secret)]);
}
