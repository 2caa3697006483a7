//! Tests of [`DiscoveryMachine`]: examples, then proptest over random schedules of
//! announcements, withdrawals, expiries, connections, dial results and floods.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use bitcraps_transport_core::Keypair;
use proptest::prelude::*;

use super::*;

const PEERS: usize = 160;

fn ids() -> &'static [PeerId] {
    static IDS: OnceLock<Vec<PeerId>> = OnceLock::new();
    IDS.get_or_init(|| {
        (0..=PEERS)
            .map(|i| {
                let mut secret = [0u8; 32];
                secret[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                Keypair::from_secret_bytes(secret).peer_id()
            })
            .collect()
    })
}

/// The local node: the id of index PEERS.
fn local() -> PeerId {
    ids()[PEERS]
}

fn route(port: u16) -> Vec<TransportAddress> {
    vec![format!("tcp://127.0.0.1:{port}").parse().expect("route")]
}

fn drain(m: &mut DiscoveryMachine) -> Vec<DiscoveryOutput> {
    std::iter::from_fn(|| m.poll_output()).collect()
}

#[test]
fn announce_refresh_change_and_expire() {
    let t0 = Instant::now();
    let mut m = DiscoveryMachine::new(local(), DiscoveryConfig::default(), t0);
    let p = ids()[0];
    let ttl = Some(Duration::from_secs(10));
    assert_eq!(
        m.on_announce(t0, local(), route(1), DiscoverySource::Mdns, ttl),
        Err(Refusal::Own)
    );
    assert_eq!(
        m.on_announce(t0, p, vec![], DiscoverySource::Mdns, ttl),
        Err(Refusal::NoRoutes)
    );
    m.on_announce(t0, p, route(1), DiscoverySource::Mdns, ttl)
        .expect("taken");
    assert_eq!(
        drain(&mut m),
        vec![DiscoveryOutput::Discovered {
            peer: p,
            routes: route(1),
            source: DiscoverySource::Mdns
        }]
    );
    // A refresh with the same routes says nothing and extends the lifetime.
    let t5 = t0 + Duration::from_secs(5);
    m.on_announce(t5, p, route(1), DiscoverySource::Mdns, ttl)
        .expect("taken");
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.poll_timeout(), Some(t5 + Duration::from_secs(10)));
    m.handle_timeout(t0 + Duration::from_secs(12));
    assert!(drain(&mut m).is_empty());
    // New routes are reported.
    m.on_announce(t5, p, route(2), DiscoverySource::Mdns, ttl)
        .expect("taken");
    assert_eq!(drain(&mut m).len(), 1);
    m.handle_timeout(t5 + Duration::from_secs(10));
    assert_eq!(
        drain(&mut m),
        vec![DiscoveryOutput::Lost {
            peer: p,
            source: DiscoverySource::Mdns
        }]
    );
    assert!(m.is_empty());
    assert_eq!(m.stats().expired, 1);
}

#[test]
fn a_flood_is_admitted_at_the_bucket_rate_and_never_grows_the_table() {
    let t0 = Instant::now();
    let config = DiscoveryConfig {
        max_known: 32,
        ..DiscoveryConfig::default()
    };
    let burst = config.new_peer_burst as usize;
    let mut m = DiscoveryMachine::new(local(), config, t0);
    let taken = (0..PEERS)
        .filter(|&i| {
            m.on_announce(t0, ids()[i], route(1), DiscoverySource::Mdns, None)
                .is_ok()
        })
        .count();
    assert_eq!(taken, burst);
    assert_eq!(m.stats().refused_rate as usize, PEERS - burst);
    // An hour of flooding at 1,000 announcements a second: the table stays capped.
    let mut now = t0;
    for step in 0..3_600_000u64 / 100 {
        now += Duration::from_millis(1);
        let i = (step as usize * 7) % PEERS;
        let _ = m.on_announce(now, ids()[i], route(1), DiscoverySource::Mdns, None);
        assert!(m.len() <= 32);
        drain(&mut m);
    }
}

#[test]
fn the_smaller_id_dials_first_and_the_larger_yields() {
    let t0 = Instant::now();
    let (a, b) = (ids()[0].min(ids()[1]), ids()[0].max(ids()[1]));
    let mut small = DiscoveryMachine::new(a, DiscoveryConfig::auto_connect(), t0);
    let mut large = DiscoveryMachine::new(b, DiscoveryConfig::auto_connect(), t0);
    small
        .on_announce(t0, b, route(2), DiscoverySource::Mdns, None)
        .expect("taken");
    large
        .on_announce(t0, a, route(1), DiscoverySource::Mdns, None)
        .expect("taken");
    assert!(drain(&mut small)
        .iter()
        .any(|o| matches!(o, DiscoveryOutput::Dial { peer, .. } if *peer == b)));
    assert!(!drain(&mut large)
        .iter()
        .any(|o| matches!(o, DiscoveryOutput::Dial { .. })));
    // The larger one dials after the yield delay only if no connection came in.
    let later = t0 + DiscoveryConfig::default().yield_delay;
    assert_eq!(large.poll_timeout(), Some(later));
    large.set_connected(later, [a]);
    large.handle_timeout(later);
    assert!(drain(&mut large).is_empty());
}

#[test]
fn failed_dials_back_off_and_success_stops_dialing() {
    let t0 = Instant::now();
    let mut m = DiscoveryMachine::new(ids()[0], DiscoveryConfig::auto_connect(), t0);
    let p = ids()[1].max(ids()[2]);
    let p = if p > ids()[0] { p } else { ids()[3] };
    let yielded = ids()[0] > p;
    let mut now = t0;
    m.on_announce(now, p, route(1), DiscoverySource::Mdns, None)
        .expect("taken");
    if yielded {
        now += m.config().yield_delay;
        m.handle_timeout(now);
    }
    let mut waits = Vec::new();
    for _ in 0..4 {
        let outs = drain(&mut m);
        assert_eq!(
            outs.iter()
                .filter(|o| matches!(o, DiscoveryOutput::Dial { .. }))
                .count(),
            1
        );
        m.dial_finished(now, p, false);
        let next = m.poll_timeout().expect("a retry");
        waits.push(next - now);
        now = next;
        m.handle_timeout(now);
    }
    assert_eq!(
        waits,
        [2, 4, 8, 16].map(Duration::from_secs).to_vec(),
        "doubling from retry_base"
    );
    // The fifth dial succeeds: no more dials while it stays connected.
    assert!(drain(&mut m)
        .iter()
        .any(|o| matches!(o, DiscoveryOutput::Dial { .. })));
    m.dial_finished(now, p, true);
    m.handle_timeout(now + Duration::from_secs(60));
    assert!(!drain(&mut m)
        .iter()
        .any(|o| matches!(o, DiscoveryOutput::Dial { .. })));
}

#[derive(Debug, Clone)]
enum Op {
    Announce { peer: usize, port: u16, ttl_s: u64 },
    Withdraw { peer: usize },
    Advance { ms: u64 },
    Connected { mask: u64 },
    DialDone { ok: bool, pick: usize },
    Flood { first: usize, count: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PEERS, 1..4u16, 0..900u64).prop_map(|(peer, port, ttl_s)| Op::Announce { peer, port, ttl_s }),
        1 => (0..PEERS).prop_map(|peer| Op::Withdraw { peer }),
        3 => (0..20_000u64).prop_map(|ms| Op::Advance { ms }),
        1 => any::<u64>().prop_map(|mask| Op::Connected { mask }),
        2 => (any::<bool>(), any::<usize>()).prop_map(|(ok, pick)| Op::DialDone { ok, pick }),
        1 => (0..PEERS, 1..PEERS).prop_map(|(first, count)| Op::Flood { first, count }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever the schedule: the table stays within `max_known`; the application's view
    /// (Discovered adds, Lost removes) is the table; dials in flight stay within
    /// `max_auto_peers`; no peer is dialed twice at once, nor while connected; new peers are
    /// admitted no faster than the bucket allows; dials start no faster than their bucket.
    #[test]
    fn random_schedules_keep_every_bound(ops in proptest::collection::vec(op(), 1..120)) {
        let t0 = Instant::now();
        let config = DiscoveryConfig {
            max_known: 24,
            max_auto_peers: 5,
            ..DiscoveryConfig::auto_connect()
        };
        let mut m = DiscoveryMachine::new(local(), config.clone(), t0);
        let mut now = t0;
        let mut view: HashMap<PeerId, Vec<TransportAddress>> = HashMap::new();
        let mut in_flight: HashSet<PeerId> = HashSet::new();
        let mut connected: HashSet<PeerId> = HashSet::new();
        let (mut admitted, mut dials) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Announce { peer, port, ttl_s } => {
                    let p = ids()[peer];
                    let is_new = !view.contains_key(&p);
                    if m.on_announce(now, p, route(port), DiscoverySource::Mdns,
                        Some(Duration::from_secs(ttl_s))).is_ok() && is_new {
                        admitted += 1;
                    }
                }
                Op::Withdraw { peer } => m.on_withdraw(now, ids()[peer], DiscoverySource::Mdns),
                Op::Advance { ms } => {
                    now += Duration::from_millis(ms);
                    m.handle_timeout(now);
                }
                Op::Connected { mask } => {
                    connected = (0..64).filter(|b| mask >> b & 1 == 1).map(|b| ids()[b]).collect();
                    m.set_connected(now, connected.iter().copied());
                }
                Op::DialDone { ok, pick } => {
                    let mut flying: Vec<PeerId> = in_flight.iter().copied().collect();
                    flying.sort();
                    if !flying.is_empty() {
                        let p = flying[pick % flying.len()];
                        in_flight.remove(&p);
                        m.dial_finished(now, p, ok);
                    }
                }
                Op::Flood { first, count } => {
                    for i in 0..count {
                        let p = ids()[(first + i) % PEERS];
                        let is_new = !view.contains_key(&p);
                        if m.on_announce(now, p, route(9), DiscoverySource::Mdns, None).is_ok()
                            && is_new {
                            admitted += 1;
                        }
                        // The shell drains after every call.
                        for o in drain(&mut m) {
                            apply(&mut view, &mut in_flight, &connected, &mut dials, o)?;
                        }
                    }
                }
            }
            for o in drain(&mut m) {
                apply(&mut view, &mut in_flight, &connected, &mut dials, o)?;
            }
            prop_assert!(m.len() <= config.max_known);
            let table: HashMap<PeerId, Vec<TransportAddress>> =
                m.peers().map(|(p, r, _)| (p, r.to_vec())).collect();
            prop_assert_eq!(&view, &table);
            prop_assert!(in_flight.len() <= config.max_auto_peers);
            prop_assert_eq!(m.dialing(), in_flight.len());
            let secs = (now - t0).as_secs_f64();
            prop_assert!(admitted as f64 <= f64::from(config.new_peer_burst) + secs * config.new_peers_per_second + 1.0);
            prop_assert!(dials as f64 <= f64::from(config.dial_burst) + secs * config.dials_per_second + 1.0);
            // Once handled, nothing is due now: the shell never spins.
            m.handle_timeout(now);
            for o in drain(&mut m) {
                apply(&mut view, &mut in_flight, &connected, &mut dials, o)?;
            }
            prop_assert!(m.poll_timeout().is_none_or(|t| t > now));
        }
    }
}

fn apply(
    view: &mut HashMap<PeerId, Vec<TransportAddress>>,
    in_flight: &mut HashSet<PeerId>,
    connected: &HashSet<PeerId>,
    dials: &mut u64,
    output: DiscoveryOutput,
) -> Result<(), TestCaseError> {
    match output {
        DiscoveryOutput::Discovered { peer, routes, .. } => {
            view.insert(peer, routes);
        }
        DiscoveryOutput::Lost { peer, .. } => {
            prop_assert!(view.remove(&peer).is_some(), "lost a peer never discovered");
        }
        DiscoveryOutput::Dial { peer, routes } => {
            prop_assert!(view.get(&peer) == Some(&routes), "dial of unknown routes");
            prop_assert!(in_flight.insert(peer), "a peer dialed twice at once");
            prop_assert!(!connected.contains(&peer), "a connected peer dialed");
            *dials += 1;
        }
    }
    Ok(())
}
