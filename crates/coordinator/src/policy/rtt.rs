//! Round-trip time estimation and retransmission timeout, after RFC 6298.
//!
//! The estimator gives the adaptive timeout for health checks and dials. Arithmetic is done
//! in nanoseconds on `u128`, so no sample (zero or [`Duration::MAX`]) can overflow or panic.
//! Per Karn's algorithm the caller must not feed samples from retried exchanges.

use std::time::Duration;

/// Bounds of an [`RttEstimator`]. `max_rto` wins over a larger `min_rto` or `initial_rto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttConfig {
    /// The RTO before any sample (before backoff).
    pub initial_rto: Duration,
    /// Lower clamp on the computed RTO.
    pub min_rto: Duration,
    /// Upper clamp on the RTO, backoff included.
    pub max_rto: Duration,
    /// Clock granularity `G`: the variance term is at least this.
    pub granularity: Duration,
}

impl Default for RttConfig {
    /// Initial 1 s, min 200 ms, max 60 s, granularity 1 ms.
    fn default() -> Self {
        Self {
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            granularity: Duration::from_millis(1),
        }
    }
}

/// SRTT/RTTVAR estimator with exponential timeout backoff.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    config: RttConfig,
    /// (SRTT, RTTVAR) in nanoseconds, once a sample has arrived.
    est: Option<(u128, u128)>,
    /// Number of timeouts since the last sample.
    backoff: u32,
    /// Samples fed so far, and the latest one (read by the stats).
    samples: u64,
    latest: Option<Duration>,
}

/// Doublings beyond this cannot change a capped RTO (`Duration::MAX` is below 2^95 ns).
const MAX_BACKOFF: u32 = 128;

impl RttEstimator {
    /// An estimator with no sample yet: `rto()` is `initial_rto`.
    pub fn new(config: RttConfig) -> Self {
        Self {
            config,
            est: None,
            backoff: 0,
            samples: 0,
            latest: None,
        }
    }

    /// Feeds one RTT measurement: the first sets SRTT = R and RTTVAR = R/2; later ones use
    /// alpha = 1/8 and beta = 1/4. Resets the timeout backoff.
    pub fn on_sample(&mut self, rtt: Duration) {
        let r = rtt.as_nanos();
        self.est = Some(match self.est {
            None => (r, r / 2),
            Some((srtt, rttvar)) => {
                let rttvar = (3 * rttvar + srtt.abs_diff(r)) / 4;
                let srtt = (7 * srtt + r) / 8;
                (srtt, rttvar)
            }
        });
        self.backoff = 0;
        self.samples = self.samples.wrapping_add(1);
        self.latest = Some(rtt);
    }

    /// How many samples were fed (a counter for the stats: a change means a new sample).
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The latest sample, once one has arrived.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// A timeout fired: the RTO doubles (capped at `max_rto`) until the next sample.
    pub fn on_timeout(&mut self) {
        self.backoff = self.backoff.saturating_add(1).min(MAX_BACKOFF);
    }

    /// The smoothed RTT, once a sample has arrived.
    pub fn srtt(&self) -> Option<Duration> {
        self.est.map(|(srtt, _)| from_nanos(srtt))
    }

    /// The RTT variation, once a sample has arrived.
    pub fn rttvar(&self) -> Option<Duration> {
        self.est.map(|(_, rttvar)| from_nanos(rttvar))
    }

    /// `max(min_rto, SRTT + max(G, 4 * RTTVAR))` (or `initial_rto` before any sample), doubled
    /// once per timeout since the last sample, capped at `max_rto`.
    pub fn rto(&self) -> Duration {
        let base = match self.est {
            None => self.config.initial_rto,
            Some((srtt, rttvar)) => {
                let var = (4 * rttvar).max(self.config.granularity.as_nanos());
                from_nanos(srtt + var).max(self.config.min_rto)
            }
        };
        let mut rto = base;
        for _ in 0..self.backoff {
            if rto >= self.config.max_rto || rto.is_zero() {
                break;
            }
            rto = rto.saturating_mul(2);
        }
        rto.min(self.config.max_rto)
    }
}

/// Nanoseconds to a `Duration`, saturating at `Duration::MAX`.
fn from_nanos(n: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(n / NANOS_PER_SEC) {
        Ok(secs) => Duration::new(secs, (n % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    fn us(x: u64) -> Duration {
        Duration::from_micros(x)
    }

    #[test]
    fn initial_rto_before_any_sample() {
        let e = RttEstimator::new(RttConfig::default());
        assert_eq!((e.srtt(), e.rttvar(), e.rto()), (None, None, ms(1000)));
    }

    #[test]
    fn hand_computed_rfc6298_sequence() {
        let mut e = RttEstimator::new(RttConfig::default());
        e.on_sample(ms(100));
        assert_eq!((e.srtt(), e.rttvar()), (Some(ms(100)), Some(ms(50))));
        assert_eq!(e.rto(), ms(300)); // 100 + 4 * 50
        e.on_sample(ms(200));
        // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5
        assert_eq!(
            (e.srtt(), e.rttvar()),
            (Some(us(112_500)), Some(us(62_500)))
        );
        assert_eq!(e.rto(), us(362_500));
        e.on_sample(ms(50));
        // RTTVAR = 3/4 * 62.5 + 1/4 * 62.5 = 62.5; SRTT = 7/8 * 112.5 + 1/8 * 50 = 104.6875
        assert_eq!(
            (e.srtt(), e.rttvar()),
            (Some(Duration::from_nanos(104_687_500)), Some(us(62_500)))
        );
        assert_eq!(e.rto(), Duration::from_nanos(354_687_500));
    }

    #[test]
    fn min_rto_clamp() {
        let mut e = RttEstimator::new(RttConfig::default());
        e.on_sample(ms(10)); // 10 + 20 = 30 ms
        assert_eq!(e.rto(), ms(200));
    }

    #[test]
    fn granularity_floor_on_variance() {
        let config = RttConfig {
            min_rto: Duration::ZERO,
            ..RttConfig::default()
        };
        let mut e = RttEstimator::new(config);
        for _ in 0..60 {
            e.on_sample(ms(500));
        }
        assert_eq!(e.srtt(), Some(ms(500)));
        assert!(e.rttvar().is_some_and(|v| v * 4 < ms(1)));
        assert_eq!(e.rto(), ms(501));
    }

    #[test]
    fn max_rto_clamp() {
        let mut e = RttEstimator::new(RttConfig::default());
        e.on_sample(Duration::from_secs(100));
        assert_eq!(e.rto(), Duration::from_secs(60));
    }

    #[test]
    fn timeout_backoff_doubles_caps_and_resets_on_sample() {
        let mut e = RttEstimator::new(RttConfig::default());
        let mut expected = vec![1, 2, 4, 8, 16, 32, 60, 60];
        for secs in expected.drain(..) {
            assert_eq!(e.rto(), Duration::from_secs(secs));
            e.on_timeout();
        }
        e.on_sample(ms(100));
        assert_eq!(e.rto(), ms(300));
        e.on_timeout();
        assert_eq!(e.rto(), ms(600));
        e.on_timeout();
        assert_eq!(e.rto(), ms(1200));
        e.on_sample(ms(100));
        assert!(e.rto() < ms(600), "backoff reset by the sample");
    }

    #[test]
    fn backoff_applies_after_the_min_clamp() {
        let mut e = RttEstimator::new(RttConfig::default());
        e.on_sample(ms(10));
        e.on_timeout();
        assert_eq!(e.rto(), ms(400));
    }

    #[test]
    fn zero_and_huge_samples_do_not_overflow() {
        let mut e = RttEstimator::new(RttConfig::default());
        e.on_sample(Duration::ZERO);
        assert_eq!(
            (e.srtt(), e.rttvar(), e.rto()),
            (Some(Duration::ZERO), Some(Duration::ZERO), ms(200))
        );
        e.on_sample(Duration::MAX);
        e.on_sample(Duration::MAX);
        assert!(e.srtt().is_some_and(|s| s > Duration::from_secs(1 << 60)));
        assert_eq!(e.rto(), Duration::from_secs(60));
        for _ in 0..1000 {
            e.on_timeout();
        }
        assert_eq!(e.rto(), Duration::from_secs(60));

        let mut e = RttEstimator::new(RttConfig {
            initial_rto: Duration::ZERO,
            min_rto: Duration::ZERO,
            max_rto: Duration::MAX,
            granularity: Duration::MAX,
        });
        for _ in 0..1000 {
            e.on_timeout();
        }
        assert_eq!(e.rto(), Duration::ZERO);
        e.on_sample(Duration::MAX);
        for _ in 0..1000 {
            e.on_timeout();
        }
        assert_eq!(e.rto(), Duration::MAX);
        assert_eq!(from_nanos(u128::MAX), Duration::MAX);
    }

    #[test]
    fn max_rto_wins_over_min_and_initial() {
        let config = RttConfig {
            initial_rto: ms(5000),
            min_rto: ms(3000),
            max_rto: ms(1000),
            granularity: ms(1),
        };
        let mut e = RttEstimator::new(config);
        assert_eq!(e.rto(), ms(1000));
        e.on_sample(ms(1));
        assert_eq!(e.rto(), ms(1000));
    }
}
