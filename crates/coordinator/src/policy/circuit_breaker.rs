//! Per-route circuit breaker: Closed -> Open -> HalfOpen -> Closed, sans-IO.
//!
//! The breaker opens after `consecutive_failures` failures in a row, or when the failure rate
//! over a sliding `window` exceeds `failure_rate` with at least `min_calls` calls in it. While
//! Open it rejects; after a cooldown (exponential from `base_cooldown`, capped at
//! `max_cooldown`, jittered by a seeded PRNG) it admits `half_open_probes` probe calls. A probe
//! success closes it; a failure re-opens it with a doubled cooldown.
//!
//! Results reported while Open are ignored: those calls were admitted before it opened. The
//! sliding window is a fixed ring of buckets (at most [`MAX_BUCKETS`]), so memory is bounded.

use std::time::{Duration, Instant};

/// Upper bound on the number of buckets in the failure-rate ring (one per second for windows
/// up to this many seconds, wider buckets beyond).
pub const MAX_BUCKETS: u32 = 60;

/// Thresholds and timings of a [`CircuitBreaker`]. Out-of-range values never panic:
/// `consecutive_failures` and `half_open_probes` of 0 act as 1, `jitter` is clamped to
/// `[0, 1]` (NaN acts as 0), a zero `window` or `min_calls` of 0 with no calls disables the
/// rate rule, and `max_cooldown` wins over a larger `base_cooldown`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Closed -> Open after this many failures in a row.
    pub consecutive_failures: u32,
    /// Closed -> Open when the failure rate over `window` is strictly greater than this.
    pub failure_rate: f64,
    /// Length of the sliding window for the failure rate.
    pub window: Duration,
    /// The rate rule applies only with at least this many calls in the window.
    pub min_calls: u32,
    /// First Open -> HalfOpen delay.
    pub base_cooldown: Duration,
    /// Cap on the cooldown, which doubles on each re-open from HalfOpen.
    pub max_cooldown: Duration,
    /// The cooldown is multiplied by a factor in `[1 - jitter, 1 + jitter]`, then capped.
    pub jitter: f64,
    /// HalfOpen admits exactly this many concurrent probe calls.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    /// 5 in a row, rate > 0.5 over 30 s with at least 10 calls, cooldown 1 s doubling to
    /// 60 s with ±10 % jitter, one probe.
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: Duration::from_secs(30),
            min_calls: 10,
            base_cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(60),
            jitter: 0.1,
            half_open_probes: 1,
        }
    }
}

/// The externally visible state of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow normally.
    Closed,
    /// Calls are rejected until `until`.
    Open {
        /// When the breaker becomes HalfOpen.
        until: Instant,
    },
    /// A limited number of probe calls are admitted.
    HalfOpen,
}

/// The answer of [`CircuitBreaker::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Allowed,
    /// HalfOpen: go ahead as a probe; report the outcome.
    Probe,
    /// Open (or HalfOpen with every probe slot taken): do not call.
    Rejected {
        /// When a retry may be admitted. In HalfOpen with every probe slot taken the probe's
        /// outcome is unknown, so this is `base_cooldown` (capped).
        retry_after: Duration,
    },
}

#[derive(Clone, Copy, Debug)]
enum Inner {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32 },
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    tick: u64,
    calls: u32,
    failures: u32,
}

/// Failure-rate window: a ring of buckets keyed by tick = (now - origin) / width.
#[derive(Clone, Debug)]
struct RateWindow {
    buckets: Box<[Bucket]>,
    width: Duration,
    origin: Option<Instant>,
    last_tick: u64,
}

impl RateWindow {
    fn new(window: Duration) -> Self {
        let secs = window
            .as_secs()
            .saturating_add(u64::from(window.subsec_nanos() > 0));
        let count = u32::try_from(secs)
            .unwrap_or(MAX_BUCKETS)
            .clamp(1, MAX_BUCKETS);
        Self {
            buckets: vec![Bucket::default(); count as usize].into_boxed_slice(),
            width: window / count,
            origin: None,
            last_tick: 0,
        }
    }

    fn len(&self) -> u64 {
        self.buckets.len() as u64
    }

    /// Current tick; never runs backwards (late reports land in the latest bucket).
    fn tick(&mut self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(now);
        let width = self.width.as_nanos().max(1);
        let raw = now.saturating_duration_since(origin).as_nanos() / width;
        self.last_tick = self.last_tick.max(u64::try_from(raw).unwrap_or(u64::MAX));
        self.last_tick
    }

    /// Records one call and returns (calls, failures) currently inside the window.
    fn record(&mut self, now: Instant, failed: bool) -> (u64, u64) {
        if self.width.is_zero() {
            return (0, 0);
        }
        let tick = self.tick(now);
        let len = self.len();
        let bucket = &mut self.buckets[(tick % len) as usize];
        if bucket.tick != tick {
            *bucket = Bucket {
                tick,
                calls: 0,
                failures: 0,
            };
        }
        bucket.calls = bucket.calls.saturating_add(1);
        bucket.failures = bucket.failures.saturating_add(u32::from(failed));
        self.buckets
            .iter()
            .filter(|b| tick.checked_sub(b.tick).is_some_and(|age| age < len))
            .fold((0, 0), |(c, f), b| {
                (c + u64::from(b.calls), f + u64::from(b.failures))
            })
    }

    fn clear(&mut self) {
        self.buckets.iter_mut().for_each(|b| *b = Bucket::default());
        self.origin = None;
        self.last_tick = 0;
    }
}

/// A circuit breaker for one route. See the module docs for the state machine.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    inner: Inner,
    streak: u32,
    window: RateWindow,
    /// Un-jittered cooldown for the next opening from HalfOpen (doubles, capped).
    cooldown: Duration,
    rng: u64,
    transitions: u64,
}

impl CircuitBreaker {
    /// A Closed breaker; `seed` drives the jitter PRNG so runs repeat.
    pub fn new(config: BreakerConfig, seed: u64) -> Self {
        Self {
            config,
            inner: Inner::Closed,
            streak: 0,
            window: RateWindow::new(config.window),
            cooldown: config.base_cooldown.min(config.max_cooldown),
            // xorshift must not start at 0; mix the seed so nearby seeds diverge quickly.
            rng: (seed ^ 0x9E37_79B9_7F4A_7C15).max(1),
            transitions: 0,
        }
    }

    /// The state at `now`; an Open breaker past its `until` reads as HalfOpen.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner {
            Inner::Closed => BreakerState::Closed,
            Inner::Open { until } if now < until => BreakerState::Open { until },
            Inner::Open { .. } | Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks whether a call (dial, send, health check) on the route may go ahead now.
    pub fn admit(&mut self, now: Instant) -> Admission {
        self.refresh(now);
        match &mut self.inner {
            Inner::Closed => Admission::Allowed,
            Inner::Open { until } => Admission::Rejected {
                retry_after: until.saturating_duration_since(now),
            },
            Inner::HalfOpen { in_flight } if *in_flight < self.config.half_open_probes.max(1) => {
                *in_flight += 1;
                Admission::Probe
            }
            Inner::HalfOpen { .. } => Admission::Rejected {
                retry_after: self.config.base_cooldown.min(self.config.max_cooldown),
            },
        }
    }

    /// A call succeeded: resets the streak when Closed; closes the breaker when HalfOpen.
    pub fn on_success(&mut self, now: Instant) {
        self.refresh(now);
        match self.inner {
            Inner::Closed => {
                self.streak = 0;
                self.window.record(now, false);
            }
            Inner::Open { .. } => {}
            Inner::HalfOpen { .. } => {
                self.cooldown = self.config.base_cooldown.min(self.config.max_cooldown);
                self.streak = 0;
                self.window.clear();
                self.set(Inner::Closed);
            }
        }
    }

    /// A call failed: may open the breaker; a failure in HalfOpen re-opens it with the
    /// cooldown doubled (capped at `max_cooldown`).
    pub fn on_failure(&mut self, now: Instant) {
        self.refresh(now);
        match self.inner {
            Inner::Closed => {
                self.streak = self.streak.saturating_add(1);
                let (calls, failures) = self.window.record(now, true);
                let by_streak = self.streak >= self.config.consecutive_failures.max(1);
                let by_rate = calls > 0
                    && calls >= u64::from(self.config.min_calls)
                    && failures as f64 / calls as f64 > self.config.failure_rate;
                if by_streak || by_rate {
                    self.cooldown = self.config.base_cooldown.min(self.config.max_cooldown);
                    self.open(now);
                }
            }
            Inner::Open { .. } => {}
            Inner::HalfOpen { .. } => {
                self.cooldown = self
                    .cooldown
                    .saturating_mul(2)
                    .min(self.config.max_cooldown);
                self.open(now);
            }
        }
    }

    /// A call was refused by a limit (not the route's fault): does not count as a success or
    /// a failure, but releases the probe slot if the call was a HalfOpen probe.
    pub fn on_rejected_by_limit(&mut self, now: Instant) {
        self.refresh(now);
        if let Inner::HalfOpen { in_flight } = &mut self.inner {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    /// How many state changes have happened (Open -> HalfOpen counts once a `&mut` call
    /// observes it).
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    fn set(&mut self, inner: Inner) {
        self.inner = inner;
        self.transitions = self.transitions.saturating_add(1);
    }

    fn refresh(&mut self, now: Instant) {
        if let Inner::Open { until } = self.inner {
            if now >= until {
                self.set(Inner::HalfOpen { in_flight: 0 });
            }
        }
    }

    fn open(&mut self, now: Instant) {
        let cooldown = self.jittered(self.cooldown);
        self.streak = 0;
        self.window.clear();
        self.set(Inner::Open {
            until: add_saturating(now, cooldown),
        });
    }

    /// `cooldown * factor` with factor uniform in `[1 - j, 1 + j)`, capped at `max_cooldown`.
    fn jittered(&mut self, cooldown: Duration) -> Duration {
        let j = self.config.jitter;
        let j = if j.is_nan() { 0.0 } else { j.clamp(0.0, 1.0) };
        if j == 0.0 {
            return cooldown.min(self.config.max_cooldown);
        }
        let factor = 1.0 - j + 2.0 * j * self.next_unit();
        Duration::try_from_secs_f64(cooldown.as_secs_f64() * factor)
            .unwrap_or(self.config.max_cooldown)
            .min(self.config.max_cooldown)
    }

    /// xorshift64*: a uniform f64 in `[0, 1)`.
    fn next_unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `now + d`, or the latest representable instant not after it (never panics).
fn add_saturating(now: Instant, mut d: Duration) -> Instant {
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        if d.is_zero() {
            return now;
        }
        d /= 2;
    }
}

#[cfg(test)]
mod tests;
