//! Tests of `limiter.rs`, at the exact boundaries of every rule.

use super::*;
use std::net::{Ipv4Addr, SocketAddrV6};

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn secs(x: u64) -> Duration {
    Duration::from_secs(x)
}

fn ip(last: u8) -> SourceKey {
    SourceKey::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
}

#[test]
fn inbound_allowance_counts_down_without_consuming() {
    let t0 = Instant::now();
    let mut l = ConnectionLimiter::new(ConnectionLimits {
        max_new_connections_per_minute: 3,
        ..ConnectionLimits::default()
    });
    assert_eq!(l.inbound_allowance(ip(1), t0), 3);
    assert_eq!(l.inbound_allowance(ip(1), t0), 3, "asking consumes nothing");
    l.check_inbound(ip(1), t0).unwrap();
    l.check_inbound(ip(1), t0).unwrap();
    assert_eq!(l.inbound_allowance(ip(1), t0), 1);
    assert_eq!(
        l.inbound_allowance(ip(2), t0),
        3,
        "other sources unaffected"
    );
    assert_eq!(l.inbound_allowance(ip(1), t0 + Duration::from_secs(20)), 2);
}

fn peer(n: u8) -> PeerId {
    crate::Keypair::from_secret_bytes([n; 32]).peer_id()
}

fn dest(n: u64) -> TransportAddress {
    TransportAddress::Memory(n)
}

fn rejection(limit: LimitKind, retry_after: Option<Duration>) -> LimitRejection {
    LimitRejection { limit, retry_after }
}

/// Limits where only the failure backoff matters.
fn backoff_only() -> ConnectionLimits {
    ConnectionLimits {
        failure_backoff: secs(1),
        connection_cooldown: secs(60),
        ..ConnectionLimits::unlimited()
    }
}

/// One inbound handshake from `source` at `now`, ending at once with `success`.
fn handshake(
    limiter: &mut ConnectionLimiter,
    source: SourceKey,
    success: bool,
    now: Instant,
) -> Result<(), LimitRejection> {
    limiter.check_inbound(source, now)?;
    limiter.inbound_handshake_done(source, success, now);
    Ok(())
}

#[test]
fn defaults() {
    let limits = ConnectionLimits::default();
    assert_eq!(limits.max_total_connections, 100);
    assert_eq!(limits.max_connections_per_peer, 3);
    assert_eq!(limits.max_new_connections_per_minute, 10);
    assert_eq!(limits.connection_cooldown, secs(60));
    assert_eq!(limits.failure_backoff, secs(1));
    assert_eq!(limits.max_handshakes_in_flight, 64);
    assert_eq!(limits.max_tracked_addresses, 4096);
    let limiter = ConnectionLimiter::new(limits.clone());
    assert_eq!(limiter.limits(), &limits);
    assert_eq!(limiter.active_connections(), 0);
    assert_eq!(limiter.handshakes_in_flight(), 0);
    assert_eq!(limiter.tracked_sources(), 0);
    assert_eq!(limiter.tracked_destinations(), 0);
}

#[test]
fn tenth_in_a_minute_admitted_eleventh_refused_token_back_after_6s() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    for _ in 0..10 {
        assert_eq!(handshake(&mut limiter, ip(1), true, t0), Ok(()));
    }
    assert_eq!(
        limiter.check_inbound(ip(1), t0),
        Err(rejection(LimitKind::NewConnectionRate, Some(secs(6))))
    );
    let almost = t0 + secs(6) - Duration::from_nanos(1);
    assert_eq!(
        limiter.check_inbound(ip(1), almost),
        Err(rejection(
            LimitKind::NewConnectionRate,
            Some(Duration::from_nanos(1))
        ))
    );
    assert_eq!(
        limiter.handshakes_in_flight(),
        0,
        "refusals are not in flight"
    );
    assert_eq!(limiter.check_inbound(ip(1), t0 + secs(6)), Ok(()));
    assert_eq!(
        limiter.check_inbound(ip(1), t0 + secs(6)),
        Err(rejection(LimitKind::NewConnectionRate, Some(secs(6))))
    );
    assert_eq!(limiter.handshakes_in_flight(), 1);
}

#[test]
fn rate_refills_continuously() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    // One a second for 10 s: 10 taken, 1.5 refilled (one every 6 s): 1.5 left at 9 s.
    for i in 0..10 {
        assert_eq!(handshake(&mut limiter, ip(1), true, t0 + secs(i)), Ok(()));
    }
    assert_eq!(handshake(&mut limiter, ip(1), true, t0 + secs(9)), Ok(()));
    // 0.5 left: the next whole token in 3 s.
    assert_eq!(
        limiter.check_inbound(ip(1), t0 + secs(9)),
        Err(rejection(LimitKind::NewConnectionRate, Some(secs(3))))
    );
    assert_eq!(handshake(&mut limiter, ip(1), true, t0 + secs(12)), Ok(()));
}

#[test]
fn noisy_source_never_affects_another() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    // The noisy source exhausts its rate, fails, and keeps knocking.
    for _ in 0..9 {
        assert_eq!(handshake(&mut limiter, ip(1), true, t0), Ok(()));
    }
    assert_eq!(handshake(&mut limiter, ip(1), false, t0), Ok(()));
    for _ in 0..1000 {
        assert_eq!(
            limiter.check_inbound(ip(1), t0).map_err(|r| r.limit),
            Err(LimitKind::Cooldown)
        );
    }
    assert_eq!(
        limiter
            .check_inbound(ip(1), t0 + secs(1))
            .map_err(|r| r.limit),
        Err(LimitKind::NewConnectionRate)
    );
    // A quiet source has its whole rate and no cooldown.
    for _ in 0..10 {
        assert_eq!(handshake(&mut limiter, ip(2), true, t0), Ok(()));
    }
    assert_eq!(
        limiter.check_inbound(ip(2), t0).map_err(|r| r.limit),
        Err(LimitKind::NewConnectionRate)
    );
    assert_eq!(
        handshake(&mut limiter, SourceKey::Opaque(7), true, t0),
        Ok(())
    );

    // Failure streaks are per source too: the noisy one reaches the 60 s cap, a quiet
    // one's first failure costs it 1 s.
    let mut limiter = ConnectionLimiter::new(backoff_only());
    let mut now = t0;
    for backoff in [1, 2, 4, 8, 16, 32, 60] {
        assert_eq!(handshake(&mut limiter, ip(1), false, now), Ok(()));
        now += secs(backoff);
    }
    now -= secs(60);
    assert_eq!(handshake(&mut limiter, ip(2), false, now), Ok(()));
    assert_eq!(
        limiter.check_inbound(ip(2), now),
        Err(rejection(LimitKind::Cooldown, Some(secs(1))))
    );
    assert_eq!(
        limiter.check_inbound(ip(1), now),
        Err(rejection(LimitKind::Cooldown, Some(secs(60))))
    );
    assert_eq!(handshake(&mut limiter, ip(3), true, now), Ok(()));
}

#[test]
fn inbound_cooldown_ends_exactly() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    assert_eq!(handshake(&mut limiter, ip(1), false, t0 + ms(500)), Ok(()));
    assert_eq!(
        limiter.check_inbound(ip(1), t0 + ms(1499)),
        Err(rejection(LimitKind::Cooldown, Some(ms(1))))
    );
    assert_eq!(limiter.check_inbound(ip(1), t0 + ms(1500)), Ok(()));
}

#[test]
fn inbound_backoff_doubles_to_the_cap_and_success_resets() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(backoff_only());
    let mut now = t0;
    for expected in [1, 2, 4, 8, 16, 32, 60, 60, 60] {
        assert_eq!(handshake(&mut limiter, ip(1), false, now), Ok(()));
        assert_eq!(
            limiter.check_inbound(ip(1), now),
            Err(rejection(LimitKind::Cooldown, Some(secs(expected))))
        );
        now += secs(expected);
    }
    assert_eq!(handshake(&mut limiter, ip(1), true, now), Ok(()));
    assert_eq!(handshake(&mut limiter, ip(1), false, now), Ok(()));
    assert_eq!(
        limiter.check_inbound(ip(1), now),
        Err(rejection(LimitKind::Cooldown, Some(secs(1))))
    );
}

#[test]
fn success_during_cooldown_resets_streak_not_cooldown() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(backoff_only());
    // Two handshakes in parallel: one fails, then the other succeeds.
    assert_eq!(limiter.check_inbound(ip(1), t0), Ok(()));
    assert_eq!(limiter.check_inbound(ip(1), t0), Ok(()));
    limiter.inbound_handshake_done(ip(1), false, t0);
    limiter.inbound_handshake_done(ip(1), true, t0 + ms(10));
    assert_eq!(
        limiter.check_inbound(ip(1), t0 + ms(10)),
        Err(rejection(LimitKind::Cooldown, Some(ms(990))))
    );
    assert_eq!(handshake(&mut limiter, ip(1), false, t0 + secs(1)), Ok(()));
    assert_eq!(
        limiter.check_inbound(ip(1), t0 + secs(1)),
        Err(rejection(LimitKind::Cooldown, Some(secs(1))))
    );
}

#[test]
fn backoff_larger_than_cap_is_capped() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        failure_backoff: secs(100),
        ..ConnectionLimits::default()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    assert_eq!(handshake(&mut limiter, ip(1), false, t0), Ok(()));
    assert_eq!(
        limiter.check_inbound(ip(1), t0),
        Err(rejection(LimitKind::Cooldown, Some(secs(60))))
    );
}

#[test]
fn handshakes_in_flight_cap() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        max_handshakes_in_flight: 2,
        max_new_connections_per_minute: 1,
        ..ConnectionLimits::default()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    assert_eq!(limiter.check_inbound(ip(1), t0), Ok(()));
    assert_eq!(limiter.check_inbound(ip(2), t0), Ok(()));
    assert_eq!(limiter.handshakes_in_flight(), 2);
    assert_eq!(
        limiter.check_inbound(ip(3), t0),
        Err(rejection(LimitKind::HandshakesInFlight, None))
    );
    assert_eq!(
        limiter.tracked_sources(),
        2,
        "a refused new source takes no slot"
    );
    limiter.inbound_handshake_done(ip(1), true, t0);
    assert_eq!(limiter.handshakes_in_flight(), 1);
    // The refusal consumed none of ip(3)'s single token.
    assert_eq!(limiter.check_inbound(ip(3), t0), Ok(()));
    assert_eq!(limiter.handshakes_in_flight(), 2);
    // A known source refused for in-flight keeps its token too.
    limiter.inbound_handshake_done(ip(2), true, t0);
    limiter.inbound_handshake_done(ip(3), true, t0);
    assert_eq!(limiter.check_inbound(ip(4), t0), Ok(()));
    assert_eq!(limiter.check_inbound(ip(5), t0), Ok(()));
    let later = t0 + secs(60);
    assert_eq!(
        limiter.check_inbound(ip(1), later),
        Err(rejection(LimitKind::HandshakesInFlight, None))
    );
    limiter.inbound_handshake_done(ip(4), false, later);
    assert_eq!(limiter.check_inbound(ip(1), later), Ok(()));
}

#[test]
fn handshake_done_never_underflows() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    limiter.inbound_handshake_done(ip(1), true, t0);
    limiter.inbound_handshake_done(ip(1), false, t0);
    assert_eq!(limiter.handshakes_in_flight(), 0);
    assert_eq!(limiter.check_inbound(ip(2), t0), Ok(()));
    assert_eq!(limiter.handshakes_in_flight(), 1);
}

#[test]
fn check_order_cooldown_then_rate_then_in_flight() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        max_handshakes_in_flight: 1,
        max_new_connections_per_minute: 1,
        ..ConnectionLimits::default()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    // ip(1): empty bucket and in cooldown; ip(2) holds the only in-flight slot.
    assert_eq!(handshake(&mut limiter, ip(1), false, t0), Ok(()));
    assert_eq!(limiter.check_inbound(ip(2), t0), Ok(()));
    assert_eq!(
        limiter.check_inbound(ip(1), t0),
        Err(rejection(LimitKind::Cooldown, Some(secs(1))))
    );
    // Cooldown over, bucket still empty (full at 60 s), in flight full: rate first.
    assert_eq!(
        limiter.check_inbound(ip(1), t0 + secs(1)),
        Err(rejection(LimitKind::NewConnectionRate, Some(secs(59))))
    );
    // Bucket full again: in flight.
    assert_eq!(
        limiter.check_inbound(ip(1), t0 + secs(60)),
        Err(rejection(LimitKind::HandshakesInFlight, None))
    );
}

#[test]
fn zero_rate_refuses_forever() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        max_new_connections_per_minute: 0,
        ..ConnectionLimits::default()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    assert_eq!(
        limiter.check_inbound(ip(1), t0),
        Err(rejection(LimitKind::NewConnectionRate, Some(Duration::MAX)))
    );
    assert_eq!(limiter.tracked_sources(), 0);
}

#[test]
fn outbound_cooldown_doubles_caps_ends_exactly_and_success_forgets() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    let d = dest(1);
    assert_eq!(limiter.check_outbound(&d, t0), Ok(()));
    assert_eq!(limiter.tracked_destinations(), 0);
    let mut now = t0;
    for expected in [1, 2, 4, 8, 16, 32, 60, 60] {
        limiter.outbound_done(&d, false, now);
        assert_eq!(
            limiter.check_outbound(&d, now),
            Err(rejection(LimitKind::Cooldown, Some(secs(expected))))
        );
        let end = now + secs(expected);
        assert_eq!(
            limiter.check_outbound(&d, end - Duration::from_nanos(1)),
            Err(rejection(
                LimitKind::Cooldown,
                Some(Duration::from_nanos(1))
            ))
        );
        assert_eq!(limiter.check_outbound(&d, end), Ok(()));
        now = end;
    }
    // Another destination is unaffected.
    assert_eq!(limiter.check_outbound(&dest(2), t0), Ok(()));
    limiter.outbound_done(&d, true, now);
    assert_eq!(limiter.tracked_destinations(), 0);
    limiter.outbound_done(&d, false, now);
    assert_eq!(
        limiter.check_outbound(&d, now),
        Err(rejection(LimitKind::Cooldown, Some(secs(1))))
    );
    // Outbound cooldowns do not touch inbound state, nor the reverse.
    assert_eq!(limiter.tracked_sources(), 0);
    assert_eq!(limiter.handshakes_in_flight(), 0);
}

#[test]
fn outbound_tcp_addresses_are_distinct_by_port() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    let a = TransportAddress::Tcp(SocketAddr::from(([127, 0, 0, 1], 1000)));
    let b = TransportAddress::Tcp(SocketAddr::from(([127, 0, 0, 1], 1001)));
    limiter.outbound_done(&a, false, t0);
    assert!(limiter.check_outbound(&a, t0).is_err());
    assert_eq!(limiter.check_outbound(&b, t0), Ok(()));
}

#[test]
fn per_peer_third_ok_fourth_refused_release_then_ok() {
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    assert_eq!(limiter.admit(peer(1), Direction::Inbound), Ok(()));
    assert_eq!(limiter.admit(peer(1), Direction::Outbound), Ok(()));
    assert_eq!(limiter.admit(peer(1), Direction::Inbound), Ok(()));
    assert_eq!(limiter.connections_of(&peer(1)), 3);
    assert_eq!(
        limiter.admit(peer(1), Direction::Outbound),
        Err(rejection(LimitKind::ConnectionsPerPeer, None))
    );
    assert_eq!(limiter.connections_of(&peer(1)), 3);
    assert_eq!(limiter.active_connections(), 3);
    // Another peer is unaffected.
    assert_eq!(limiter.admit(peer(2), Direction::Inbound), Ok(()));
    limiter.release(peer(1));
    assert_eq!(limiter.connections_of(&peer(1)), 2);
    assert_eq!(limiter.admit(peer(1), Direction::Inbound), Ok(()));
    assert_eq!(limiter.active_connections(), 4);
}

#[test]
fn total_hundredth_ok_hundred_first_refused() {
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    for i in 0..100u8 {
        let direction = if i % 2 == 0 {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        assert_eq!(limiter.admit(peer(i), direction), Ok(()), "{i}");
    }
    assert_eq!(limiter.active_connections(), 100);
    for direction in [Direction::Inbound, Direction::Outbound] {
        assert_eq!(
            limiter.admit(peer(200), direction),
            Err(rejection(LimitKind::TotalConnections, None))
        );
        // A connected peer under its own limit is refused too.
        assert_eq!(
            limiter.admit(peer(0), direction),
            Err(rejection(LimitKind::TotalConnections, None))
        );
    }
    assert_eq!(limiter.connections_of(&peer(200)), 0);
    assert_eq!(limiter.peers.len(), 100);
    limiter.release(peer(5));
    assert_eq!(limiter.admit(peer(200), Direction::Inbound), Ok(()));
    assert_eq!(limiter.active_connections(), 100);
}

#[test]
fn per_peer_refusal_wins_over_total() {
    let limits = ConnectionLimits {
        max_total_connections: 3,
        ..ConnectionLimits::default()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    for _ in 0..3 {
        assert_eq!(limiter.admit(peer(1), Direction::Inbound), Ok(()));
    }
    assert_eq!(
        limiter.admit(peer(1), Direction::Inbound),
        Err(rejection(LimitKind::ConnectionsPerPeer, None))
    );
    assert_eq!(
        limiter.admit(peer(2), Direction::Inbound),
        Err(rejection(LimitKind::TotalConnections, None))
    );
}

#[test]
fn release_unknown_is_noop_and_map_holds_only_connected_peers() {
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    limiter.release(peer(9));
    assert_eq!(limiter.active_connections(), 0);
    assert_eq!(limiter.admit(peer(1), Direction::Inbound), Ok(()));
    assert_eq!(limiter.admit(peer(1), Direction::Inbound), Ok(()));
    limiter.release(peer(9));
    assert_eq!(limiter.active_connections(), 2);
    limiter.release(peer(1));
    limiter.release(peer(1));
    assert_eq!(limiter.connections_of(&peer(1)), 0);
    assert!(limiter.peers.is_empty());
    limiter.release(peer(1));
    assert_eq!(limiter.active_connections(), 0);
}

#[test]
fn zero_limits_refuse_everything_without_panicking() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        max_total_connections: 0,
        max_connections_per_peer: 0,
        max_new_connections_per_minute: 0,
        connection_cooldown: Duration::ZERO,
        failure_backoff: Duration::ZERO,
        max_handshakes_in_flight: 0,
        max_tracked_addresses: 0,
    };
    let mut limiter = ConnectionLimiter::new(limits);
    assert!(limiter.admit(peer(1), Direction::Inbound).is_err());
    assert!(limiter.check_inbound(ip(1), t0).is_err());
    limiter.inbound_handshake_done(ip(1), false, t0);
    limiter.outbound_done(&dest(1), false, t0);
    assert_eq!(limiter.check_outbound(&dest(1), t0), Ok(()));
    assert_eq!(limiter.tracked_sources(), 0);
    assert_eq!(limiter.tracked_destinations(), 0);
}

#[test]
fn sources_table_is_bounded() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        max_tracked_addresses: 64,
        max_handshakes_in_flight: usize::MAX,
        ..ConnectionLimits::default()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    let mut in_flight = 0;
    for i in 0..100_000u64 {
        let source = SourceKey::Opaque(i);
        let now = t0 + ms(i);
        assert_eq!(limiter.check_inbound(source, now), Ok(()));
        in_flight += 1;
        // Some end in failures (entries with a cooldown), some stay in flight.
        match i % 3 {
            0 => limiter.inbound_handshake_done(source, false, now),
            1 => limiter.inbound_handshake_done(source, true, now),
            _ => continue,
        }
        in_flight -= 1;
        assert!(limiter.tracked_sources() <= 64);
    }
    assert_eq!(limiter.tracked_sources(), 64);
    assert_eq!(limiter.handshakes_in_flight(), in_flight);
    // Ending handshakes of long-evicted sources still counts down, and a failure of an
    // evicted source tracks it again for its cooldown.
    limiter.inbound_handshake_done(SourceKey::Opaque(2), false, t0 + secs(100_000));
    assert_eq!(limiter.handshakes_in_flight(), in_flight - 1);
    assert_eq!(
        limiter.check_inbound(SourceKey::Opaque(2), t0 + secs(100_000)),
        Err(rejection(LimitKind::Cooldown, Some(secs(1))))
    );
    // Inserting it swept every entry that went stale in the meantime.
    assert_eq!(limiter.tracked_sources(), 1);
}

#[test]
fn destinations_table_is_bounded() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        max_tracked_addresses: 64,
        ..ConnectionLimits::default()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    for i in 0..100_000u64 {
        let now = t0 + ms(i);
        assert_eq!(limiter.check_outbound(&dest(i), now), Ok(()));
        limiter.outbound_done(&dest(i), false, now);
        assert!(limiter.tracked_destinations() <= 64);
    }
    assert_eq!(limiter.tracked_destinations(), 64);
    // The most recent failure is still remembered.
    assert!(limiter
        .check_outbound(&dest(99_999), t0 + ms(99_999))
        .is_err());
}

#[test]
fn full_table_drops_stale_entries_before_live_ones() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        max_tracked_addresses: 4,
        ..backoff_only()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    // Source 1, the least recently seen, earns a 60 s cooldown (7 failures in a row).
    assert_eq!(limiter.check_inbound(ip(1), t0), Ok(()));
    for _ in 0..7 {
        limiter.inbound_handshake_done(ip(1), false, t0);
    }
    // Sources 2..=4 are seen later, with unlimited rate: stale at once.
    for n in 2..=4 {
        assert_eq!(handshake(&mut limiter, ip(n), true, t0 + secs(1)), Ok(()));
    }
    assert_eq!(limiter.tracked_sources(), 4);
    assert_eq!(handshake(&mut limiter, ip(5), true, t0 + secs(2)), Ok(()));
    assert_eq!(
        limiter.check_inbound(ip(1), t0 + secs(2)),
        Err(rejection(LimitKind::Cooldown, Some(secs(58)))),
        "the live cooldown survived"
    );
    assert_eq!(
        limiter.tracked_sources(),
        2,
        "all stale entries went at once"
    );
}

#[test]
fn full_destination_table_drops_expired_cooldowns_first() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        max_tracked_addresses: 4,
        ..ConnectionLimits::default()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    // Destination 1 (least recent) fails twice: 2 s cooldown from t0 + 1 s.
    limiter.outbound_done(&dest(1), false, t0);
    limiter.outbound_done(&dest(1), false, t0 + secs(1));
    for n in 2..=4 {
        limiter.outbound_done(&dest(n), false, t0 + secs(1)); // 1 s cooldowns
    }
    limiter.outbound_done(&dest(5), false, t0 + secs(2));
    assert_eq!(
        limiter.check_outbound(&dest(1), t0 + secs(2)),
        Err(rejection(LimitKind::Cooldown, Some(secs(1))))
    );
    assert_eq!(limiter.tracked_destinations(), 2);
}

#[test]
fn unlimited_refuses_nothing_and_tracks_nothing_needlessly() {
    let t0 = Instant::now();
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::unlimited());
    for i in 0..10_000u32 {
        let now = t0 + ms(u64::from(i));
        assert_eq!(handshake(&mut limiter, ip(1), i % 2 == 0, now), Ok(()));
        assert_eq!(limiter.check_inbound(ip(2), now), Ok(()));
        limiter.outbound_done(&dest(1), false, now);
        assert_eq!(limiter.check_outbound(&dest(1), now), Ok(()));
        assert_eq!(limiter.admit(peer(1), Direction::Outbound), Ok(()));
    }
    assert_eq!(limiter.handshakes_in_flight(), 10_000);
    assert_eq!(limiter.active_connections(), 10_000);
    assert_eq!(limiter.tracked_destinations(), 0);
}

#[test]
fn huge_durations_do_not_overflow() {
    let t0 = Instant::now();
    let limits = ConnectionLimits {
        failure_backoff: Duration::MAX,
        connection_cooldown: Duration::MAX,
        ..ConnectionLimits::unlimited()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    for _ in 0..3 {
        limiter.inbound_handshake_done(ip(1), false, t0);
        limiter.outbound_done(&dest(1), false, t0);
    }
    assert_eq!(
        limiter.check_inbound(ip(1), t0 + secs(1)),
        Err(rejection(
            LimitKind::Cooldown,
            Some(Duration::MAX - secs(1))
        ))
    );
    assert!(limiter.check_outbound(&dest(1), t0 + secs(1)).is_err());

    // Long streaks: the doubling factor overflows u32 and Duration; the cap holds.
    let limits = ConnectionLimits {
        failure_backoff: Duration::from_nanos(3),
        connection_cooldown: secs(u64::MAX / 2),
        ..ConnectionLimits::unlimited()
    };
    let mut limiter = ConnectionLimiter::new(limits);
    for _ in 0..200 {
        limiter.inbound_handshake_done(ip(1), false, t0);
        limiter.outbound_done(&dest(1), false, t0);
    }
    assert_eq!(
        limiter.check_inbound(ip(1), t0),
        Err(rejection(LimitKind::Cooldown, Some(secs(u64::MAX / 2))))
    );
}

#[test]
fn streak_counter_saturates() {
    let t0 = Instant::now();
    let mut backoff = Backoff::none(t0);
    backoff.failures = u32::MAX - 1;
    let limits = backoff_only();
    backoff.fail(t0, &limits);
    backoff.fail(t0, &limits);
    assert_eq!(backoff.failures, u32::MAX);
    assert_eq!(backoff.remaining(t0), Some(secs(60)));
}

#[test]
fn earlier_now_does_not_panic_or_shorten_cooldowns() {
    let t0 = Instant::now();
    let t1 = t0 + secs(10);
    let mut limiter = ConnectionLimiter::new(ConnectionLimits::default());
    assert_eq!(handshake(&mut limiter, ip(1), false, t1), Ok(()));
    limiter.outbound_done(&dest(1), false, t1);
    assert_eq!(
        limiter.check_inbound(ip(1), t0),
        Err(rejection(LimitKind::Cooldown, Some(secs(1))))
    );
    assert_eq!(
        limiter.check_outbound(&dest(1), t0),
        Err(rejection(LimitKind::Cooldown, Some(secs(1))))
    );
    for _ in 0..9 {
        assert_eq!(handshake(&mut limiter, ip(2), true, t1), Ok(()));
    }
    assert_eq!(handshake(&mut limiter, ip(2), true, t0), Ok(()));
    assert!(limiter.check_inbound(ip(2), t0).is_err());
}

#[test]
fn source_keys_from_addresses() {
    let v4: IpAddr = Ipv4Addr::new(192, 0, 2, 7).into();
    let key = SourceKey::from(SocketAddr::new(v4, 1234));
    assert_eq!(key, SourceKey::Ip(v4));
    assert_eq!(
        SourceKey::from(SocketAddr::new(v4, 4321)),
        key,
        "port ignored"
    );
    let mapped: IpAddr = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped().into();
    assert_eq!(SourceKey::from(mapped), key, "IPv4-mapped IPv6 is IPv4");
    let a: Ipv6Addr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd"
        .parse()
        .unwrap_or(Ipv6Addr::UNSPECIFIED);
    let b: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
    let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
    let prefix: Ipv6Addr = "2001:db8:1:2::".parse().unwrap_or(Ipv6Addr::LOCALHOST);
    assert_eq!(
        SourceKey::from(IpAddr::V6(a)),
        SourceKey::Ip(IpAddr::V6(prefix))
    );
    assert_eq!(
        SourceKey::from(SocketAddr::V6(SocketAddrV6::new(b, 9, 0, 0))),
        SourceKey::from(IpAddr::V6(a)),
        "same /64"
    );
    assert_ne!(
        SourceKey::from(IpAddr::V6(c)),
        SourceKey::from(IpAddr::V6(a))
    );
}

#[test]
fn rejection_messages() {
    let cases = [
        (
            rejection(LimitKind::ConnectionsPerPeer, None),
            "limit `connections per peer` reached; retry when a connection or handshake ends",
        ),
        (
            rejection(LimitKind::NewConnectionRate, Some(ms(1500))),
            "limit `new connections per minute` reached; retry after 1.5s",
        ),
        (
            rejection(LimitKind::Cooldown, Some(secs(4))),
            "limit `failure cooldown` reached; retry after 4s",
        ),
        (
            rejection(LimitKind::TotalConnections, None),
            "limit `total connections` reached; retry when a connection or handshake ends",
        ),
        (
            rejection(LimitKind::HandshakesInFlight, None),
            "limit `handshakes in flight` reached; retry when a connection or handshake ends",
        ),
        (
            rejection(LimitKind::NewConnectionRate, Some(Duration::MAX)),
            "limit `new connections per minute` reached; no retry can succeed under these limits",
        ),
    ];
    for (rejection, message) in cases {
        assert_eq!(rejection.to_string(), message);
        let _: &dyn std::error::Error = &rejection;
    }
}
