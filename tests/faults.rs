//! The fault run's test target: every backend that rides on TCP or UDP, through every fault
//! profile, every fault case, as libtest trials named `<backend>::<profile>/<case>` (e.g.
//! `quic::loss-5pct-reorder-dup/messages`). A profile that says nothing about a backend is
//! listed as ignored with the reason. Each trial runs on its own two-worker runtime under a
//! guard, so a hang fails instead of blocking the run.
//!
//! Run: `cargo xtask conformance --faults` (or `cargo test -p bitcraps-conformance --test
//! faults`); filter with `-- tcp::` or `-- corrupt`.

use std::time::Duration;

use bitcraps_conformance::faults::cases::{path_kind, FaultRun};
use bitcraps_conformance::faults::{Expect, FAULT_CASES, PROFILES};
use bitcraps_conformance::{harness, HarnessFactory};
use libtest_mimic::{Arguments, Failed, Trial};

/// The backends that ride on TCP or UDP.
const BACKENDS: &[HarnessFactory] = &[
    harness::tcp::harness,
    harness::websocket::plain,
    harness::websocket::secure,
    harness::quic::harness,
    harness::udp::harness,
];

/// A trial that has not finished by then has hung: it fails.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(60);

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn trials() -> Vec<Trial> {
    let mut trials = Vec::new();
    for &make in BACKENDS {
        let name = runtime()
            .expect("tokio runtime")
            .block_on(async { make().name() });
        let Some(kind) = path_kind(name) else {
            continue;
        };
        for &profile in PROFILES {
            for &case in FAULT_CASES {
                let title = format!("{name}::{}/{}", profile.name, case.name);
                let trial = Trial::test(title, move || -> Result<(), Failed> {
                    let rt = runtime().map_err(|e| format!("tokio runtime: {e}"))?;
                    let outcome = rt.block_on(async {
                        let run = FaultRun {
                            harness: make(),
                            kind,
                            profile,
                        };
                        tokio::time::timeout(TRIAL_TIMEOUT, (case.run)(run)).await
                    });
                    rt.shutdown_timeout(Duration::from_secs(1));
                    match outcome {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(message)) => Err(message.into()),
                        Err(_) => Err(format!("hung: no result within {TRIAL_TIMEOUT:?}").into()),
                    }
                });
                trials.push(match (profile.expect)(kind) {
                    Expect::NotApplicable(reason) => {
                        trial.with_ignored_flag(true).with_kind(reason)
                    }
                    _ => trial,
                });
            }
        }
    }
    trials
}

fn main() {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials()).exit();
}
