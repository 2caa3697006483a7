//! Boundary tests of the circuit breaker state machine (deterministic instants).

use super::*;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn exact() -> BreakerConfig {
    BreakerConfig {
        jitter: 0.0,
        ..BreakerConfig::default()
    }
}

/// Replays `pattern` ('F' failure, 'S' success) at `now`.
fn feed(b: &mut CircuitBreaker, now: Instant, pattern: &str) {
    for c in pattern.chars() {
        assert_eq!(b.admit(now), Admission::Allowed);
        if c == 'F' {
            b.on_failure(now)
        } else {
            b.on_success(now)
        }
    }
}

/// Opens a fresh breaker at `t` by a streak; returns it.
fn opened(config: BreakerConfig, seed: u64, t: Instant) -> CircuitBreaker {
    let mut b = CircuitBreaker::new(config, seed);
    feed(&mut b, t, "FFFFF");
    b
}

fn until(b: &CircuitBreaker, now: Instant) -> Instant {
    match b.state(now) {
        BreakerState::Open { until } => until,
        other => panic!("expected Open, got {other:?}"),
    }
}

#[test]
fn fifth_consecutive_failure_opens() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(exact(), 1);
    feed(&mut b, t0, "FFFF");
    assert_eq!(b.state(t0), BreakerState::Closed);
    assert_eq!(b.transitions(), 0);
    b.on_failure(t0);
    assert_eq!(
        b.state(t0),
        BreakerState::Open {
            until: t0 + ms(1000)
        }
    );
    assert_eq!(b.transitions(), 1);
}

#[test]
fn success_resets_the_streak() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(exact(), 1);
    feed(&mut b, t0, "FFFFSFFFF");
    assert_eq!(b.state(t0), BreakerState::Closed);
    feed(&mut b, t0, "F");
    assert!(matches!(b.state(t0), BreakerState::Open { .. }));
}

#[test]
fn rate_rule_needs_min_calls() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(exact(), 1);
    feed(&mut b, t0, "FFFFSFFFF"); // 9 calls, 8 failures, streak 4
    assert_eq!(b.state(t0), BreakerState::Closed);
    feed(&mut b, t0, "S"); // 10 calls: a success never opens
    assert_eq!(b.state(t0), BreakerState::Closed);
    feed(&mut b, t0, "F"); // 11 calls, 9 failures, streak 1
    assert!(matches!(b.state(t0), BreakerState::Open { .. }));
}

#[test]
fn rate_must_strictly_exceed_threshold() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(exact(), 1);
    feed(&mut b, t0, "SFSFSFSFSF"); // 10 calls, rate 0.5
    assert_eq!(b.state(t0), BreakerState::Closed);
    let mut b = CircuitBreaker::new(exact(), 1);
    feed(&mut b, t0, "FSFSFSFSF"); // 9 calls, rate 0.56: below min_calls
    assert_eq!(b.state(t0), BreakerState::Closed);
    feed(&mut b, t0, "F"); // 10 calls, rate 0.6
    assert!(matches!(b.state(t0), BreakerState::Open { .. }));
}

#[test]
fn calls_older_than_the_window_fall_out() {
    let t0 = Instant::now();
    for (at, opens) in [(29_999, true), (30_000, false), (45_000, false)] {
        let mut b = CircuitBreaker::new(exact(), 1);
        feed(&mut b, t0, "FSFSFSFSF");
        feed(&mut b, t0 + ms(at), "F");
        assert_eq!(
            matches!(b.state(t0 + ms(at)), BreakerState::Open { .. }),
            opens,
            "{at}"
        );
    }
}

#[test]
fn window_ring_is_bounded() {
    assert_eq!(RateWindow::new(Duration::from_secs(30)).buckets.len(), 30);
    assert_eq!(RateWindow::new(Duration::from_secs(30)).width, ms(1000));
    let w = RateWindow::new(Duration::from_secs(600));
    assert_eq!((w.buckets.len(), w.width), (60, Duration::from_secs(10)));
    assert_eq!(RateWindow::new(ms(1500)).buckets.len(), 2);
    assert_eq!(RateWindow::new(Duration::MAX).buckets.len(), 60);
}

#[test]
fn open_rejects_until_exactly_until_then_one_probe() {
    let t0 = Instant::now();
    let t = t0 + ms(1000);
    let mut b = opened(exact(), 1, t);
    for (x, left) in [(1000, 1000), (1500, 500), (1999, 1)] {
        assert_eq!(
            b.admit(t0 + ms(x)),
            Admission::Rejected {
                retry_after: ms(left)
            }
        );
        assert_eq!(
            b.state(t0 + ms(x)),
            BreakerState::Open {
                until: t0 + ms(2000)
            }
        );
    }
    assert_eq!(b.transitions(), 1);
    assert_eq!(b.state(t0 + ms(2000)), BreakerState::HalfOpen);
    assert_eq!(b.admit(t0 + ms(2000)), Admission::Probe);
    assert_eq!(b.transitions(), 2);
    assert_eq!(
        b.admit(t0 + ms(2000)),
        Admission::Rejected {
            retry_after: ms(1000)
        }
    );
    assert_eq!(
        b.admit(t0 + ms(9000)),
        Admission::Rejected {
            retry_after: ms(1000)
        }
    );
}

#[test]
fn probe_success_closes_with_a_fresh_streak() {
    let t0 = Instant::now();
    let mut b = opened(exact(), 1, t0);
    let t1 = t0 + ms(1000);
    assert_eq!(b.admit(t1), Admission::Probe);
    b.on_success(t1);
    assert_eq!(b.state(t1), BreakerState::Closed);
    assert_eq!(b.transitions(), 3);
    feed(&mut b, t1, "FFFF");
    assert_eq!(b.state(t1), BreakerState::Closed);
    feed(&mut b, t1, "F");
    assert_eq!(until(&b, t1), t1 + ms(1000), "cooldown back at base");
}

#[test]
fn probe_failure_reopens_with_doubled_capped_cooldown() {
    let t0 = Instant::now();
    let mut b = opened(exact(), 1, t0);
    let mut now = t0;
    for expected in [1, 2, 4, 8, 16, 32, 60, 60, 60] {
        let u = until(&b, now);
        assert_eq!(u - now, Duration::from_secs(expected));
        now = u;
        assert_eq!(b.admit(now), Admission::Probe);
        b.on_failure(now);
    }
    assert_eq!(b.transitions(), 1 + 2 * 9);
    now = until(&b, now);
    assert_eq!(b.admit(now), Admission::Probe);
    b.on_success(now);
    feed(&mut b, now, "FFFFF");
    assert_eq!(until(&b, now) - now, ms(1000));
}

#[test]
fn jitter_stays_within_bounds() {
    let t0 = Instant::now();
    for seed in 0..200 {
        let mut b = opened(BreakerConfig::default(), seed, t0);
        let mut now = t0;
        for level in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0] {
            let u = until(&b, now);
            let got = (u - now).as_secs_f64();
            assert!(
                got >= level * 0.9 - 1e-9 && got <= level * 1.1 + 1e-9,
                "{got} {level}"
            );
            assert!(got <= 60.0);
            now = u;
            assert_eq!(b.admit(now), Admission::Probe);
            b.on_failure(now);
        }
    }
}

fn cooldowns(seed: u64) -> Vec<Duration> {
    let t0 = Instant::now();
    let mut b = opened(BreakerConfig::default(), seed, t0);
    let mut now = t0;
    let mut out = Vec::new();
    for _ in 0..10 {
        let u = until(&b, now);
        out.push(u - now);
        now = u;
        b.admit(now);
        b.on_failure(now);
    }
    out
}

#[test]
fn same_seed_same_sequence() {
    assert_eq!(cooldowns(42), cooldowns(42));
    assert_ne!(cooldowns(42), cooldowns(43));
    assert_eq!(cooldowns(0), cooldowns(0));
}

#[test]
fn limit_rejections_do_not_count() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(exact(), 1);
    feed(&mut b, t0, "FFFF");
    b.on_rejected_by_limit(t0);
    assert_eq!(b.state(t0), BreakerState::Closed);
    feed(&mut b, t0, "F");
    let t1 = until(&b, t0);
    b.on_rejected_by_limit(t0);
    assert_eq!(b.state(t0), BreakerState::Open { until: t1 });
    assert_eq!(b.admit(t1), Admission::Probe);
    b.on_rejected_by_limit(t1); // releases the slot
    assert_eq!(b.state(t1), BreakerState::HalfOpen);
    assert_eq!(b.admit(t1), Admission::Probe);
    assert!(matches!(b.admit(t1), Admission::Rejected { .. }));
    assert_eq!(b.transitions(), 2);
}

#[test]
fn several_probes_when_configured() {
    let t0 = Instant::now();
    let mut b = opened(
        BreakerConfig {
            half_open_probes: 2,
            ..exact()
        },
        1,
        t0,
    );
    let t1 = t0 + ms(1000);
    assert_eq!(b.admit(t1), Admission::Probe);
    assert_eq!(b.admit(t1), Admission::Probe);
    assert!(matches!(b.admit(t1), Admission::Rejected { .. }));
    b.on_success(t1);
    assert_eq!(b.admit(t1), Admission::Allowed);
}

#[test]
fn results_while_open_are_ignored() {
    let t0 = Instant::now();
    let mut b = opened(exact(), 1, t0);
    b.on_success(t0 + ms(10));
    b.on_failure(t0 + ms(20));
    assert_eq!(
        b.state(t0 + ms(30)),
        BreakerState::Open {
            until: t0 + ms(1000)
        }
    );
    assert_eq!(b.transitions(), 1);
}

#[test]
fn hostile_configs_and_times_never_panic() {
    let t0 = Instant::now();
    let configs = [
        BreakerConfig {
            consecutive_failures: 0,
            failure_rate: f64::NAN,
            window: Duration::ZERO,
            min_calls: 0,
            base_cooldown: Duration::ZERO,
            max_cooldown: Duration::ZERO,
            jitter: f64::NAN,
            half_open_probes: 0,
        },
        BreakerConfig {
            consecutive_failures: u32::MAX,
            failure_rate: -1.0,
            window: Duration::MAX,
            min_calls: 0,
            base_cooldown: Duration::MAX,
            max_cooldown: Duration::MAX,
            jitter: 7.0,
            half_open_probes: u32::MAX,
        },
        BreakerConfig {
            jitter: -3.0,
            window: Duration::from_nanos(1),
            ..exact()
        },
        BreakerConfig {
            base_cooldown: ms(5000),
            max_cooldown: ms(100),
            ..exact()
        },
    ];
    for config in configs {
        let mut b = CircuitBreaker::new(config, u64::MAX);
        for i in 0..200u64 {
            // Time jumps back and forth.
            let now = t0 + ms((i * 7919) % 5000);
            let _ = b.admit(now);
            match i % 4 {
                0 | 1 => b.on_failure(now),
                2 => b.on_success(now),
                _ => b.on_rejected_by_limit(now),
            }
            if let BreakerState::Open { until } = b.state(now) {
                // `now` may be up to 5 s before the opening instant.
                let bound = config.max_cooldown.saturating_add(ms(5000));
                assert!(until.saturating_duration_since(now) <= bound);
            }
        }
    }
    // Zero thresholds act as 1: the first failure opens.
    let mut b = CircuitBreaker::new(configs[0], 0);
    b.on_failure(t0);
    assert_eq!(b.transitions(), 1);
}

proptest::proptest! {
    #[test]
    fn random_runs_keep_invariants(
        ops in proptest::collection::vec((0u8..4, 0u64..3000), 0..300),
        n in 0u32..8, probes in 0u32..4, min_calls in 0u32..12,
        rate in -0.1f64..1.1, jitter in -0.5f64..1.5, seed: u64,
    ) {
        let config = BreakerConfig {
            consecutive_failures: n, failure_rate: rate, window: ms(10_000), min_calls,
            base_cooldown: ms(100), max_cooldown: ms(5000), jitter, half_open_probes: probes,
        };
        let mut b = CircuitBreaker::new(config, seed);
        let mut now = Instant::now();
        let mut transitions = 0;
        for (op, step) in ops {
            now += ms(step);
            match op {
                0 => match (b.admit(now), b.state(now)) {
                    (Admission::Allowed, s) => assert_eq!(s, BreakerState::Closed),
                    (Admission::Probe, s) => assert_eq!(s, BreakerState::HalfOpen),
                    (Admission::Rejected { retry_after }, BreakerState::Open { until }) => {
                        assert_eq!(retry_after, until - now)
                    }
                    (Admission::Rejected { retry_after }, s) => {
                        assert_eq!((retry_after, s), (ms(100), BreakerState::HalfOpen))
                    }
                },
                1 => b.on_success(now),
                2 => b.on_failure(now),
                _ => b.on_rejected_by_limit(now),
            }
            if let BreakerState::Open { until } = b.state(now) {
                assert!(until - now <= ms(5000));
            }
            if let Inner::HalfOpen { in_flight } = b.inner {
                assert!(in_flight <= probes.max(1));
            }
            assert!(b.transitions() >= transitions);
            transitions = b.transitions();
        }
    }
}
