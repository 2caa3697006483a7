//! Tests of `token_bucket.rs`, at the exact boundaries of every rule.

use super::*;
use proptest::prelude::*;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

#[test]
fn starts_full_and_refuses_when_empty() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(5, 1.0, t0);
    assert_eq!(bucket.capacity(), 5);
    assert_eq!(bucket.available(t0), 5);
    assert_eq!(bucket.try_take(3, t0), Ok(()));
    assert_eq!(bucket.try_take(2, t0), Ok(()));
    assert_eq!(bucket.available(t0), 0);
    assert_eq!(bucket.try_take(1, t0), Err(Duration::from_secs(1)));
    assert_eq!(bucket.try_take(3, t0), Err(Duration::from_secs(3)));
}

#[test]
fn refused_take_takes_nothing() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(5, 1.0, t0);
    assert_eq!(bucket.try_take(4, t0), Ok(()));
    assert_eq!(bucket.try_take(2, t0), Err(Duration::from_secs(1)));
    assert_eq!(bucket.available(t0), 1);
    assert_eq!(bucket.try_take(1, t0), Ok(()));
}

#[test]
fn exact_period_six_seconds_a_token() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::with_period(10, 10, Duration::from_secs(60), t0);
    for _ in 0..10 {
        assert_eq!(bucket.try_take(1, t0), Ok(()));
    }
    assert_eq!(bucket.try_take(1, t0), Err(ms(6000)));
    let just_before = t0 + ms(6000) - Duration::from_nanos(1);
    assert_eq!(
        bucket.try_take(1, just_before),
        Err(Duration::from_nanos(1))
    );
    assert_eq!(bucket.available(just_before), 0);
    assert_eq!(bucket.try_take(1, t0 + ms(6000)), Ok(()));
    assert_eq!(bucket.try_take(1, t0 + ms(6000)), Err(ms(6000)));
    // Full again 60 s after the last take, and never above capacity.
    assert_eq!(bucket.available(t0 + ms(66_000)), 10);
    assert_eq!(bucket.available(t0 + ms(600_000)), 10);
}

#[test]
fn no_rounding_drift_over_many_small_steps() {
    let t0 = Instant::now();
    // 3 tokens a second: one every 333_333_333.33 ns, not a whole number of nanoseconds.
    let mut bucket = TokenBucket::with_period(3, 3, Duration::from_secs(1), t0);
    assert_eq!(bucket.try_take(3, t0), Ok(()));
    let mut now = t0;
    for _ in 0..999 {
        now += Duration::from_nanos(1_000_001);
        let _ = bucket.available(now);
    }
    // 999 * 1_000_001 ns = 999_000_999 ns; 3 tokens need 1_000_000_000 ns.
    assert_eq!(bucket.available(now), 2);
    assert_eq!(bucket.try_take(3, now), Err(Duration::from_nanos(999_001)));
    assert_eq!(bucket.try_take(3, t0 + Duration::from_secs(1)), Ok(()));
}

#[test]
fn float_rate_is_exact_for_round_numbers() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(2, 2.0, t0);
    assert_eq!(bucket.try_take(2, t0), Ok(()));
    assert_eq!(bucket.try_take(1, t0), Err(ms(500)));
    assert_eq!(bucket.try_take(1, t0 + ms(500)), Ok(()));

    let mut slow = TokenBucket::new(1, 0.1, t0);
    assert_eq!(slow.try_take(1, t0), Ok(()));
    assert_eq!(slow.try_take(1, t0), Err(Duration::from_secs(10)));
    assert_eq!(slow.try_take(1, t0 + Duration::from_secs(10)), Ok(()));
}

#[test]
fn more_than_capacity_is_never() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(5, 1000.0, t0);
    assert_eq!(bucket.try_take(6, t0), Err(Duration::MAX));
    assert_eq!(bucket.peek(u32::MAX, t0), Err(Duration::MAX));
    assert_eq!(bucket.available(t0), 5);
}

#[test]
fn zero_tokens_always_ok() {
    let t0 = Instant::now();
    let mut empty = TokenBucket::new(0, 0.0, t0);
    assert_eq!(empty.try_take(0, t0), Ok(()));
    assert_eq!(empty.try_take(1, t0), Err(Duration::MAX));
}

#[test]
fn peek_takes_nothing() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(1, 1.0, t0);
    assert_eq!(bucket.peek(1, t0), Ok(()));
    assert_eq!(bucket.peek(1, t0), Ok(()));
    assert_eq!(bucket.try_take(1, t0), Ok(()));
    assert_eq!(bucket.peek(1, t0 + ms(250)), Err(ms(750)));
}

#[test]
fn no_refill_rates() {
    let t0 = Instant::now();
    for rate in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
        let mut bucket = TokenBucket::new(2, rate, t0);
        assert_eq!(bucket.try_take(2, t0), Ok(()));
        let later = t0 + Duration::from_secs(1_000_000);
        assert_eq!(bucket.try_take(1, later), Err(Duration::MAX), "rate {rate}");
    }
    let mut never = TokenBucket::with_period(2, 0, Duration::from_secs(1), t0);
    assert_eq!(never.try_take(2, t0), Ok(()));
    assert_eq!(never.try_take(1, t0 + ms(5000)), Err(Duration::MAX));
}

#[test]
fn huge_rates_and_durations_do_not_overflow() {
    let t0 = Instant::now();
    let far = t0 + Duration::from_secs(1 << 40);
    for rate in [f64::INFINITY, f64::MAX, 1e12, 1e300] {
        let mut bucket = TokenBucket::new(u32::MAX, rate, t0);
        assert_eq!(bucket.try_take(u32::MAX, t0), Ok(()));
        assert_eq!(bucket.available(far), u32::MAX);
    }
    let mut slow = TokenBucket::with_period(u32::MAX, 1, Duration::MAX, t0);
    assert_eq!(slow.try_take(u32::MAX, t0), Ok(()));
    assert!(slow.try_take(u32::MAX, far).is_err());
    let mut instant = TokenBucket::with_period(1, 1, Duration::ZERO, t0);
    assert_eq!(instant.try_take(1, t0), Ok(()));
    assert_eq!(instant.try_take(1, t0), Err(Duration::from_nanos(1)));
    assert_eq!(instant.try_take(1, t0 + Duration::from_nanos(1)), Ok(()));
    // A tiny positive rate still refills, eventually.
    let mut tiny = TokenBucket::new(1, 1e-300, t0);
    assert_eq!(tiny.try_take(1, t0), Ok(()));
    assert_eq!(tiny.try_take(1, t0), Err(Duration::from_secs(1_000_000)));
}

#[test]
fn earlier_now_adds_nothing() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(10);
    let mut bucket = TokenBucket::new(2, 1.0, t0);
    assert_eq!(bucket.try_take(2, t1), Ok(()));
    // Going back to t0 adds nothing, and the wait counts from t1.
    assert_eq!(bucket.available(t0), 0);
    assert_eq!(bucket.try_take(1, t0), Err(Duration::from_secs(11)));
    // And does not move the refill origin back.
    assert_eq!(bucket.available(t1 + ms(999)), 0);
    assert_eq!(bucket.available(t1 + ms(1000)), 1);
}

#[test]
fn rate_limits_default() {
    let limits = RateLimits::default();
    assert_eq!(limits.messages_per_second, 200);
    assert_eq!(limits.message_burst, 400);
    assert_eq!(limits.bytes_per_second, 4 << 20);
    assert_eq!(limits.byte_burst, 8 << 20);
    assert_eq!(limits.max_keys, 4096);
}

#[test]
fn message_burst_then_rate() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(RateLimits::default());
    for _ in 0..400 {
        assert_eq!(limiter.check(&1u8, 10, t0), Ok(()));
    }
    // 200 a second: one every 5 ms.
    assert_eq!(limiter.check(&1u8, 10, t0), Err(ms(5)));
    assert_eq!(limiter.check(&1u8, 10, t0 + ms(4)), Err(ms(1)));
    assert_eq!(limiter.check(&1u8, 10, t0 + ms(5)), Ok(()));
    assert_eq!(limiter.check(&1u8, 10, t0 + ms(5)), Err(ms(5)));
    // Another key is untouched.
    assert_eq!(limiter.check(&2u8, 10, t0), Ok(()));
    assert_eq!(limiter.len(), 2);
}

#[test]
fn byte_burst_then_rate() {
    let t0 = Instant::now();
    let limits = RateLimits {
        bytes_per_second: 1000,
        byte_burst: 3000,
        ..RateLimits::default()
    };
    let mut limiter = RateLimiter::new(limits);
    assert_eq!(limiter.check(&"a", 2000, t0), Ok(()));
    assert_eq!(limiter.check(&"a", 1000, t0), Ok(()));
    assert_eq!(limiter.check(&"a", 500, t0), Err(ms(500)));
    assert_eq!(limiter.check(&"a", 0, t0), Ok(()));
    assert_eq!(limiter.check(&"a", 500, t0 + ms(500)), Ok(()));
    // Larger than the burst: never.
    assert_eq!(limiter.check(&"b", 3001, t0), Err(Duration::MAX));
    assert_eq!(limiter.check(&"b", usize::MAX, t0), Err(Duration::MAX));
    assert_eq!(limiter.len(), 1, "a message refused outright takes no slot");
}

#[test]
fn refusal_is_atomic_and_waits_for_both() {
    let t0 = Instant::now();
    let limits = RateLimits {
        messages_per_second: 1,
        message_burst: 2,
        bytes_per_second: 100,
        byte_burst: 100,
        max_keys: 8,
    };
    let mut limiter = RateLimiter::new(limits);
    assert_eq!(limiter.check(&0u8, 100, t0), Ok(()));
    // Bytes refuse: the message token must not be taken.
    assert_eq!(limiter.check(&0u8, 50, t0), Err(ms(500)));
    assert_eq!(limiter.check(&0u8, 0, t0), Ok(()));
    // Now both refuse: the longer wait wins (message: 1 s, bytes: 500 ms).
    assert_eq!(limiter.check(&0u8, 50, t0), Err(ms(1000)));
    assert_eq!(limiter.check(&0u8, 50, t0 + ms(1000)), Ok(()));
}

#[test]
fn zero_message_burst_refuses_everything() {
    let t0 = Instant::now();
    let limits = RateLimits {
        message_burst: 0,
        ..RateLimits::default()
    };
    let mut limiter = RateLimiter::new(limits);
    assert_eq!(limiter.check(&1u8, 0, t0), Err(Duration::MAX));
    assert!(limiter.is_empty());
}

#[test]
fn forget_resets_a_key() {
    let t0 = Instant::now();
    let limits = RateLimits {
        message_burst: 1,
        ..RateLimits::default()
    };
    let mut limiter = RateLimiter::new(limits);
    assert!(limiter.is_empty());
    assert_eq!(limiter.check(&7u32, 1, t0), Ok(()));
    assert!(limiter.check(&7u32, 1, t0).is_err());
    limiter.forget(&7);
    limiter.forget(&8);
    assert!(limiter.is_empty());
    assert_eq!(limiter.check(&7u32, 1, t0), Ok(()));
}

#[test]
fn evicts_least_recently_used_key() {
    let t0 = Instant::now();
    let limits = RateLimits {
        message_burst: 1,
        messages_per_second: 1,
        max_keys: 2,
        ..RateLimits::default()
    };
    let mut limiter = RateLimiter::new(limits);
    assert_eq!(limiter.check(&1u8, 0, t0), Ok(()));
    assert_eq!(limiter.check(&2u8, 0, t0), Ok(()));
    assert!(limiter.check(&1u8, 0, t0).is_err()); // 1 is now the most recently used
    assert_eq!(limiter.check(&3u8, 0, t0), Ok(())); // evicts 2
    assert_eq!(limiter.len(), 2);
    assert!(limiter.check(&1u8, 0, t0).is_err(), "1 kept its state");
    assert_eq!(limiter.check(&2u8, 0, t0), Ok(()), "2 was forgotten");
}

#[test]
fn idle_keys_are_dropped_before_busy_ones() {
    let t0 = Instant::now();
    let limits = RateLimits {
        message_burst: 1,
        messages_per_second: 1,
        max_keys: 2,
        ..RateLimits::default()
    };
    let mut limiter = RateLimiter::new(limits);
    assert_eq!(limiter.check(&2u8, 0, t0), Ok(())); // key 2 full again at 1 s
    assert_eq!(limiter.check(&1u8, 0, t0 + ms(500)), Ok(())); // key 1 full again at 1.5 s
    assert_eq!(limiter.check(&2u8, 0, t0 + ms(600)), Err(ms(400))); // key 2 most recent
                                                                    // At 1.2 s key 1 is the least recently used but still busy; key 2 is idle: it goes.
    assert_eq!(limiter.check(&3u8, 0, t0 + ms(1200)), Ok(()));
    assert_eq!(limiter.len(), 2);
    assert_eq!(
        limiter.check(&1u8, 0, t0 + ms(1200)),
        Err(ms(300)),
        "busy key 1 kept"
    );
}

#[test]
fn bounded_with_many_keys() {
    let t0 = Instant::now();
    let limits = RateLimits {
        max_keys: 64,
        ..RateLimits::default()
    };
    let mut limiter = RateLimiter::new(limits);
    for key in 0..100_000u32 {
        assert_eq!(limiter.check(&key, 100, t0), Ok(()));
        assert!(limiter.len() <= 64);
    }
    assert_eq!(limiter.len(), 64);
}

#[test]
fn unlimited_never_refuses() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(RateLimits::unlimited());
    for _ in 0..10_000 {
        assert_eq!(limiter.check(&0u8, 1 << 30, t0), Ok(()));
    }
}

proptest! {
    /// Whatever the sequence of takes and (possibly backwards) times: no panic, never
    /// more than the capacity available, and the tokens taken over any run never exceed
    /// the capacity plus what the rate refilled since the start.
    #[test]
    fn bucket_never_gives_more_than_allowed(
        capacity in 0u32..50,
        per_second in 0u32..20,
        steps in prop::collection::vec((0u64..3_000_000_000, any::<bool>(), 0u32..60), 1..100),
    ) {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::with_period(capacity, per_second, Duration::from_secs(1), t0);
        let mut now = t0;
        let mut latest = t0;
        let mut taken: u128 = 0;
        for (dt, backwards, tokens) in steps {
            now = if backwards {
                now.checked_sub(Duration::from_nanos(dt)).unwrap_or(now).max(t0)
            } else {
                now + Duration::from_nanos(dt)
            };
            latest = latest.max(now);
            prop_assert!(bucket.available(now) <= capacity);
            match bucket.try_take(tokens, now) {
                Ok(()) => taken += u128::from(tokens),
                Err(wait) => {
                    prop_assert!(wait > Duration::ZERO);
                    if tokens > capacity || per_second == 0 {
                        prop_assert_eq!(wait, Duration::MAX);
                    } else if let Some(then) = now.checked_add(wait) {
                        // Waiting as told is enough (on a clone: nothing else happens).
                        prop_assert_eq!(bucket.clone().try_take(tokens, then), Ok(()));
                    }
                }
            }
            let elapsed = latest.duration_since(t0).as_nanos();
            let refilled = elapsed * u128::from(per_second) / 1_000_000_000;
            prop_assert!(taken <= u128::from(capacity) + refilled);
        }
    }
}
