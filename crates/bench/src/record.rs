//! One measured figure of the report: our backend and its raw baseline in the same run, and the
//! ratio. Printed as one JSON object per line on stdout; `cargo xtask bench` collects them.

use serde::Serialize;

/// What a record measures, which fixes its unit and which way is better.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    /// One-way goodput, GB/s (higher is better).
    Throughput,
    /// Round-trip time of one message, median, microseconds (lower is better).
    RttP50,
    /// Round-trip time of one message, 99th percentile, microseconds.
    RttP99,
    /// Dial until both ends hold an established connection, median, microseconds.
    SetupP50,
    /// The same, 99th percentile, microseconds.
    SetupP99,
    /// Resident memory per idle connection (both ends in process), KiB.
    IdleMemory,
}

impl Scenario {
    /// The unit of `ours` and `raw`.
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Self::Throughput => "GB/s",
            Self::RttP50 | Self::RttP99 | Self::SetupP50 | Self::SetupP99 => "us",
            Self::IdleMemory => "KiB",
        }
    }

    /// Whether a larger figure is better (the ratio reads "ours as a share of raw" then).
    pub(crate) fn higher_is_better(self) -> bool {
        matches!(self, Self::Throughput)
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Record {
    /// Backend: tcp, udp, quic, ws, memory.
    pub(crate) backend: &'static str,
    /// What was measured.
    pub(crate) scenario: Scenario,
    /// Message size in bytes (0 where no message is involved).
    pub(crate) size: usize,
    /// Unit of `ours` and `raw`.
    pub(crate) unit: &'static str,
    /// Our figure.
    pub(crate) ours: f64,
    /// The raw library's figure, same workload, same run.
    pub(crate) raw: Option<f64>,
    /// The raw library used.
    pub(crate) raw_name: &'static str,
    /// ours / raw for throughput; raw / ours for times and memory (so 1.0 means "as good as raw"
    /// and a figure above 1.0 means the baseline or the measurement is wrong).
    pub(crate) ratio: Option<f64>,
    /// Share of messages delivered (ours, raw), for datagram backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) delivered: Option<(f64, f64)>,
}

impl Record {
    /// A record comparing `ours` with `raw`.
    pub(crate) fn new(
        backend: &'static str,
        scenario: Scenario,
        size: usize,
        ours: f64,
        raw: Option<f64>,
        raw_name: &'static str,
    ) -> Self {
        let ratio = raw.filter(|r| *r > 0.0 && ours > 0.0).map(|r| {
            if scenario.higher_is_better() {
                ours / r
            } else {
                r / ours
            }
        });
        Self {
            backend,
            scenario,
            size,
            unit: scenario.unit(),
            ours,
            raw,
            raw_name,
            ratio,
            delivered: None,
        }
    }

    /// Prints the record as one JSON line on stdout and a readable line on stderr.
    pub(crate) fn emit(&self) {
        match serde_json::to_string(self) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("cannot serialise a record: {e}"),
        }
        eprintln!(
            "{:<7} {:<11} {:>6} B  ours {:>10.3} {}  raw {:>10} ({})  ratio {}{}",
            self.backend,
            format!("{:?}", self.scenario),
            self.size,
            self.ours,
            self.unit,
            self.raw.map_or("-".into(), |r| format!("{r:.3}")),
            self.raw_name,
            self.ratio.map_or("-".into(), |r| format!("{r:.2}")),
            self.delivered.map_or(String::new(), |(o, r)| format!(
                "  delivered ours {:.2}% raw {:.2}%",
                o * 100.0,
                r * 100.0
            )),
        );
    }
}

/// The median of `v` (0 for an empty slice).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    percentile(v, 50.0)
}

/// The `p`th percentile of `v` (nearest rank; 0 for an empty slice).
pub(crate) fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        v.reverse();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn ratio_reads_as_good_as_raw_both_ways() {
        let t = Record::new("tcp", Scenario::Throughput, 1024, 1.0, Some(4.0), "x");
        assert_eq!(t.ratio, Some(0.25));
        let l = Record::new("tcp", Scenario::RttP50, 64, 40.0, Some(10.0), "x");
        assert_eq!(l.ratio, Some(0.25));
        let none = Record::new("tcp", Scenario::RttP50, 64, 40.0, None, "x");
        assert_eq!(none.ratio, None);
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains(r#""scenario":"throughput""#), "{json}");
    }
}
