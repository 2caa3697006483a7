//! The conformance suite's test target: every case runs on every registered backend, as
//! libtest trials named `<backend>::<case>` (e.g. `tcp::identity_wrong_peer`). Each trial runs
//! on its own two-worker tokio runtime under an overall guard, so a hang fails instead of
//! blocking the run. A case that does not apply to a backend is listed as ignored, with the
//! reason as its kind (`test [n/a: ...] udp::ten_thousand_in_order ... ignored`).
//!
//! Run: `cargo test -p bitcraps-conformance --test conformance` (or `cargo xtask conformance`);
//! filter by backend with `-- tcp::`.

use std::sync::Arc;
use std::time::Duration;

use bitcraps_conformance::{harness, Case, HarnessFactory, Profile, CASES};
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter};
use libtest_mimic::{Arguments, Failed, Trial};

/// The backends under test. Adding one is one line here (plus its module in `harness/`).
const BACKENDS: &[HarnessFactory] = &[
    harness::tcp::harness,
    harness::memory::harness,
    harness::quic::harness,
    harness::udp::harness,
    harness::websocket::plain,
    harness::websocket::secure,
    harness::ble_sim::harness_23,
    harness::ble_sim::harness_247,
    #[cfg(target_os = "linux")]
    harness::ble_bluez::harness,
];

/// A case that has not finished by then has hung: it fails.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// What a backend offers, read from a throwaway transport (inside a runtime, for backends
/// whose constructors need one).
fn profile(make: HarnessFactory) -> (&'static str, Profile, Option<String>) {
    let rt = runtime().expect("tokio runtime");
    rt.block_on(async {
        let h = make();
        if let Some(why) = h.unavailable() {
            eprintln!("{}: every case skipped: {why}", h.name());
            let profile = Profile {
                capabilities: bitcraps_transport_core::Capabilities::reliable(0),
                raw: false,
                one_link_per_pair: false,
                refuses_explicitly: false,
            };
            return (h.name(), profile, Some(why));
        }
        let transport = h.transport(
            Keypair::generate(),
            ChannelConfig::default(),
            SharedLimiter::unlimited(),
        );
        let profile = Profile {
            capabilities: transport.capabilities(),
            raw: h.has_raw_access(),
            one_link_per_pair: h.one_link_per_pair(),
            refuses_explicitly: h.refuses_explicitly(),
        };
        (h.name(), profile, None)
    })
}

fn run_case(make: HarnessFactory, case: Case) -> Result<(), Failed> {
    let rt = runtime().map_err(|e| format!("tokio runtime: {e}"))?;
    let outcome = rt.block_on(async {
        let h: Arc<_> = make();
        tokio::time::timeout(CASE_TIMEOUT, (case.run)(h)).await
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(message.into()),
        Err(_) => Err(format!("hung: no result within {CASE_TIMEOUT:?}").into()),
    }
}

fn trials() -> Vec<Trial> {
    let mut trials = Vec::new();
    for &make in BACKENDS {
        let (name, profile, unavailable) = profile(make);
        for &case in CASES {
            let trial = Trial::test(format!("{name}::{}", case.name), move || {
                run_case(make, case)
            });
            // Not applicable: ignored, with the reason. If forced (`--include-ignored`) it
            // really runs, so it is never passed without running.
            if unavailable.is_some() {
                trials.push(
                    trial
                        .with_ignored_flag(true)
                        .with_kind("skipped: backend unavailable"),
                );
                continue;
            }
            trials.push(match case.requires.skip_reason(&profile) {
                Some(reason) => trial.with_ignored_flag(true).with_kind(reason),
                None => trial,
            });
        }
    }
    trials
}

fn main() {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials()).exit();
}
