//! Reconnect backoff: exponential in the number of consecutive failures, capped, with jitter
//! drawn from the node's seeded generator (so a seed replays the same schedule). Sans-IO.

use std::time::Duration;

use crate::sim::rng::SimRng;

/// Reconnect delays: `initial * 2^(failures - 1)`, at most `max`, then jittered down to a
/// uniform point in `[delay / 2, delay]` so nodes that lost a link together do not retry in
/// lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure (before jitter).
    pub initial: Duration,
    /// The largest delay (before jitter).
    pub max: Duration,
}

impl Default for Backoff {
    /// 500 ms, doubling up to 30 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before the next attempt after `failures` consecutive failures (at least 1).
    pub(crate) fn delay(&self, failures: u32, rng: &mut SimRng) -> Duration {
        let exp = failures.saturating_sub(1).min(24);
        let full = self.initial.saturating_mul(1 << exp).min(self.max);
        let half = full / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rng.below(spread.saturating_add(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters_within_bounds() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let mut rng = SimRng::new(7);
        for (failures, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let full = Duration::from_millis(full);
            for _ in 0..50 {
                let d = b.delay(failures, &mut rng);
                assert!(d >= full / 2 && d <= full, "{failures}: {d:?}");
            }
        }
        let (mut x, mut y) = (SimRng::new(3), SimRng::new(3));
        assert_eq!(b.delay(2, &mut x), b.delay(2, &mut y));
        let distinct: std::collections::BTreeSet<_> = (0..20).map(|_| b.delay(3, &mut x)).collect();
        assert!(distinct.len() > 10, "jitter spreads the delays");
    }
}
