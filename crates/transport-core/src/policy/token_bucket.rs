//! Token buckets: one [`TokenBucket`], and [`RateLimiter`], a message and byte limiter per key.
//!
//! The arithmetic is integer-exact. A rate is "`tokens` every `period`", and a bucket's level is
//! kept in units of `1 / period_ns` of a token in a `u128`, so refilling adds exactly
//! `elapsed_ns * tokens` units and nothing is lost to rounding, however the time is sliced:
//! with 10 tokens a minute, an empty bucket holds one token again exactly 6 s later, not a
//! nanosecond before. An `Instant` earlier than the last one seen adds nothing and panics
//! nowhere.

use std::hash::Hash;
use std::time::{Duration, Instant};

use super::lru_table::LruTable;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Below this many tokens per second, a floating-point rate keeps six decimal places.
const FINE_RATE_LIMIT: f64 = 1e12;

/// A capacity and a refill rate of `tokens` every `period_ns` nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rate {
    capacity: u64,
    tokens: u64,
    /// Never 0.
    period_ns: u64,
}

impl Rate {
    /// `tokens` every `period`; a zero period counts as 1 ns, one over 584 years as 584 years.
    fn per_period(capacity: u64, tokens: u64, period: Duration) -> Self {
        let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        Self {
            capacity,
            tokens,
            period_ns,
        }
    }

    /// `per_second` tokens per second, to a millionth of a token per second; not a positive
    /// number (0, negative, NaN): no refill; huge or infinite: saturates.
    fn per_second_f64(capacity: u64, per_second: f64) -> Self {
        if per_second.is_nan() || per_second <= 0.0 {
            Self::per_period(capacity, 0, Duration::from_secs(1))
        } else if per_second < FINE_RATE_LIMIT {
            // Float to int `as` saturates; below the limit it is exact to the rounding.
            let micro_tokens = ((per_second * 1e6).round() as u64).max(1);
            Self {
                capacity,
                tokens: micro_tokens,
                period_ns: NANOS_PER_SEC * 1_000_000,
            }
        } else {
            Self::per_period(capacity, per_second as u64, Duration::from_secs(1))
        }
    }

    /// Level units for `tokens` tokens.
    fn units(&self, tokens: u64) -> u128 {
        u128::from(tokens) * u128::from(self.period_ns)
    }

    fn full(&self) -> u128 {
        self.units(self.capacity)
    }
}

/// The changing part of a bucket: its level, and when it was last refilled.
#[derive(Clone, Copy, Debug)]
struct Level {
    /// In units of `1 / rate.period_ns` token; at most `rate.full()`.
    units: u128,
    last: Instant,
}

impl Level {
    fn full(rate: &Rate, now: Instant) -> Self {
        Self {
            units: rate.full(),
            last: now,
        }
    }

    fn refill(&mut self, rate: &Rate, now: Instant) {
        // An earlier `now` than `last` adds nothing and keeps `last`.
        if let Some(elapsed) = now.checked_duration_since(self.last) {
            let added = elapsed.as_nanos().saturating_mul(u128::from(rate.tokens));
            self.units = self.units.saturating_add(added).min(rate.full());
            self.last = now;
        }
    }

    /// `Ok` if `tokens` are available at `now`, else how long until they are. Takes nothing.
    fn wait_for(&mut self, rate: &Rate, tokens: u64, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if tokens > rate.capacity {
            return Err(Duration::MAX);
        }
        let needed = rate.units(tokens);
        if self.units >= needed {
            return Ok(());
        }
        if rate.tokens == 0 {
            return Err(Duration::MAX);
        }
        let wait_ns = (needed - self.units).div_ceil(u128::from(rate.tokens));
        // If `now` is behind `last`, the wait counts from `last`.
        let behind = self.last.saturating_duration_since(now);
        Err(duration_from_nanos(wait_ns).saturating_add(behind))
    }

    /// Removes `tokens`; the caller has just checked they are there with `wait_for`.
    fn take(&mut self, rate: &Rate, tokens: u64) {
        self.units = self.units.saturating_sub(rate.units(tokens));
    }

    fn try_take(&mut self, rate: &Rate, tokens: u64, now: Instant) -> Result<(), Duration> {
        self.wait_for(rate, tokens, now)?;
        self.take(rate, tokens);
        Ok(())
    }

    fn available(&mut self, rate: &Rate, now: Instant) -> u64 {
        self.refill(rate, now);
        u64::try_from(self.units / u128::from(rate.period_ns)).unwrap_or(u64::MAX)
    }

    fn is_full(&mut self, rate: &Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.units >= rate.full()
    }
}

/// Nanoseconds as a `Duration`, saturating at `Duration::MAX`.
fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = nanos / u128::from(NANOS_PER_SEC);
    let sub_nanos = (nanos % u128::from(NANOS_PER_SEC)) as u32;
    match u64::try_from(secs) {
        Ok(secs) => Duration::new(secs, sub_nanos),
        Err(_) => Duration::MAX,
    }
}

/// Token bucket: `capacity` tokens, refilled continuously at `refill_per_second`. Starts full.
///
/// Taking is all or nothing: a refused [`try_take`](Self::try_take) takes no token.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: Rate,
    level: Level,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens, refilled at `refill_per_second` (precise to a
    /// millionth of a token per second; zero, negative or NaN: never refilled; huge or
    /// infinite: saturates). For an exact rate such as "10 a minute", use
    /// [`with_period`](Self::with_period).
    pub fn new(capacity: u32, refill_per_second: f64, now: Instant) -> Self {
        let rate = Rate::per_second_f64(u64::from(capacity), refill_per_second);
        Self {
            rate,
            level: Level::full(&rate, now),
        }
    }

    /// A full bucket of `capacity` tokens, refilled by exactly `tokens` every `period`,
    /// continuously (10 every 60 s: one every 6 s). A zero period counts as 1 ns.
    pub fn with_period(capacity: u32, tokens: u32, period: Duration, now: Instant) -> Self {
        let rate = Rate::per_period(u64::from(capacity), u64::from(tokens), period);
        Self {
            rate,
            level: Level::full(&rate, now),
        }
    }

    /// Takes `tokens` tokens, or takes none and returns how long until there are enough.
    /// Taking more than the capacity, or more than there are from a bucket that never refills,
    /// is `Err(Duration::MAX)`. Taking 0 always succeeds.
    pub fn try_take(&mut self, tokens: u32, now: Instant) -> Result<(), Duration> {
        self.level.try_take(&self.rate, u64::from(tokens), now)
    }

    /// The answer [`try_take`](Self::try_take) would give, without taking anything.
    pub fn peek(&mut self, tokens: u32, now: Instant) -> Result<(), Duration> {
        self.level.wait_for(&self.rate, u64::from(tokens), now)
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Instant) -> u32 {
        u32::try_from(self.level.available(&self.rate, now)).unwrap_or(u32::MAX)
    }

    /// The capacity (and burst) in tokens.
    pub fn capacity(&self) -> u32 {
        u32::try_from(self.rate.capacity).unwrap_or(u32::MAX)
    }
}

/// Limits of a [`RateLimiter`]: a bucket for messages and one for bytes, per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Sustained messages per second (default 200).
    pub messages_per_second: u32,
    /// Messages that may arrive at once after a quiet period (default 400).
    pub message_burst: u32,
    /// Sustained bytes per second (default 4 MiB).
    pub bytes_per_second: u64,
    /// Bytes that may arrive at once after a quiet period (default 8 MiB). A message larger
    /// than this is always refused, so keep it at least the largest message size.
    pub byte_burst: u64,
    /// Keys tracked at most; beyond, the least recently used key is forgotten (default 4096).
    pub max_keys: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            messages_per_second: 200,
            message_burst: 400,
            bytes_per_second: 4 * 1024 * 1024,
            byte_burst: 8 * 1024 * 1024,
            max_keys: 4096,
        }
    }
}

impl RateLimits {
    /// Limits that never refuse realistic traffic (bursts of 2^32 - 1 messages and 2^64 - 1
    /// bytes), for tests and benchmarks.
    pub fn unlimited() -> Self {
        Self {
            messages_per_second: u32::MAX,
            message_burst: u32::MAX,
            bytes_per_second: u64::MAX,
            byte_burst: u64::MAX,
            max_keys: 4096,
        }
    }
}

/// The two buckets of one key.
#[derive(Clone, Copy, Debug)]
struct KeyLevels {
    messages: Level,
    bytes: Level,
}

/// Per-key message and byte rate limiter (e.g. key = `PeerId`): two buckets per key (messages,
/// bytes), capped number of keys (evicts the least recently used).
///
/// A key seen for the first time starts with full buckets. When the key table is full, keys
/// whose buckets are both full again (they carry no state) are dropped first, then the least
/// recently used one; a forgotten key only ever gets a fresh allowance, never a refusal.
#[derive(Clone, Debug)]
pub struct RateLimiter<K> {
    limits: RateLimits,
    messages: Rate,
    bytes: Rate,
    keys: LruTable<K, KeyLevels>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter with no key tracked yet.
    pub fn new(limits: RateLimits) -> Self {
        let one_second = Duration::from_secs(1);
        Self {
            messages: Rate::per_period(
                u64::from(limits.message_burst),
                u64::from(limits.messages_per_second),
                one_second,
            ),
            bytes: Rate::per_period(limits.byte_burst, limits.bytes_per_second, one_second),
            keys: LruTable::new(limits.max_keys),
            limits,
        }
    }

    /// The limits this limiter enforces.
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Accounts one message of `bytes` bytes from `key`: `Ok` if both buckets allow it, else
    /// `Err` with how long until both will (nothing is taken). A message larger than the byte
    /// burst, or any message when the message burst is 0, is `Err(Duration::MAX)`.
    pub fn check(&mut self, key: &K, bytes: usize, now: Instant) -> Result<(), Duration> {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let (messages, byte_rate) = (self.messages, self.bytes);
        if bytes > byte_rate.capacity || messages.capacity == 0 {
            // Refused whatever the state: do not let it take a table slot.
            return Err(Duration::MAX);
        }
        let levels = self.keys.get_or_insert_with(
            key,
            || KeyLevels {
                messages: Level::full(&messages, now),
                bytes: Level::full(&byte_rate, now),
            },
            |levels| {
                levels.messages.is_full(&messages, now) && levels.bytes.is_full(&byte_rate, now)
            },
        );
        let message_wait = levels.messages.wait_for(&messages, 1, now);
        let byte_wait = levels.bytes.wait_for(&byte_rate, bytes, now);
        match (message_wait, byte_wait) {
            (Ok(()), Ok(())) => {
                levels.messages.take(&messages, 1);
                levels.bytes.take(&byte_rate, bytes);
                Ok(())
            }
            (Err(a), Err(b)) => Err(a.max(b)),
            (Err(wait), Ok(())) | (Ok(()), Err(wait)) => Err(wait),
        }
    }

    /// Forgets `key` (e.g. its connection closed); it starts with full buckets if seen again.
    pub fn forget(&mut self, key: &K) {
        self.keys.remove(key);
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.keys.len() == 0
    }
}

#[cfg(test)]
#[path = "token_bucket_tests.rs"]
mod tests;
