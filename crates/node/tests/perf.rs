//! `bitcraps-node perf` end to end: the binary measures each backend in process and prints one
//! `perf` event whose figures are consistent (what was delivered was sent, bytes match the
//! message count, percentiles are ordered). No assertion on how fast anything is.

#![cfg(unix)]

mod common;

use common::{of_kind, run_json, Listening};
use serde_json::Value;

/// Runs `perf ARGS` and returns its one `perf` event.
async fn perf(args: &[&str]) -> Value {
    let mut full = vec!["perf"];
    full.extend_from_slice(args);
    let done = run_json(&full).await;
    assert!(done.success, "perf {args:?} failed: {}", done.stderr);
    let events = of_kind(&done.events, "perf");
    assert_eq!(events.len(), 1, "{:?}", done.events);
    events[0].clone()
}

fn int(e: &Value, key: &str) -> u64 {
    e[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} not an integer: {e}"))
}

fn num(e: &Value, key: &str) -> f64 {
    e[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} not a number: {e}"))
}

fn check_consistent(e: &Value, transport: &str, size: u64, rounds: u64) {
    assert_eq!(e["transport"], transport, "{e}");
    assert_eq!(int(e, "size"), size);
    let (sent, delivered) = (int(e, "sent"), int(e, "delivered"));
    assert!(delivered <= sent, "{e}");
    assert_eq!(int(e, "bytes"), delivered * size, "{e}");
    assert_eq!(int(e, "rounds"), rounds, "{e}");
    let (p50, p99) = (num(e, "rtt_p50_us"), num(e, "rtt_p99_us"));
    assert!(p50 > 0.0 && p50 <= p99, "{e}");
    let secs = num(e, "seconds");
    assert!(secs > 0.0, "{e}");
    let rate = num(e, "messages_per_second");
    assert!(
        (rate * secs - delivered as f64).abs() <= 1e-6 * delivered as f64 + 1e-9,
        "{e}"
    );
}

#[tokio::test]
async fn reliable_backends_deliver_every_byte_asked_for() {
    for transport in ["tcp", "quic", "ws", "wss", "memory"] {
        let e = perf(&[
            "--transport",
            transport,
            "--size",
            "1000",
            "--bytes",
            "2000000",
            "--rounds",
            "50",
        ])
        .await;
        check_consistent(&e, transport, 1000, 50);
        assert_eq!(int(&e, "sent"), 2000, "{e}");
        assert_eq!(int(&e, "delivered"), 2000, "{e}");
    }
}

#[tokio::test]
async fn udp_counts_what_it_delivered() {
    let e = perf(&[
        "--transport",
        "udp",
        "--size",
        "512",
        "--bytes",
        "512000",
        "--rounds",
        "20",
    ])
    .await;
    check_consistent(&e, "udp", 512, 20);
    assert_eq!(int(&e, "sent"), 1000, "{e}");
}

#[tokio::test]
async fn the_simulated_radio_is_measured_too() {
    let e = perf(&[
        "--transport",
        "ble-sim",
        "--size",
        "100",
        "--bytes",
        "1000",
        "--rounds",
        "3",
    ])
    .await;
    check_consistent(&e, "ble-sim", 100, 3);
    assert_eq!(int(&e, "delivered"), 10, "{e}");
}

#[tokio::test]
async fn a_duration_bounds_the_run_instead_of_bytes() {
    let e = perf(&[
        "--transport",
        "memory",
        "--size",
        "64",
        "--duration",
        "0.2",
        "--rounds",
        "10",
    ])
    .await;
    check_consistent(&e, "memory", 64, 10);
    assert_eq!(int(&e, "sent"), int(&e, "delivered"), "{e}");
}

#[tokio::test]
async fn a_remote_listener_is_measured_through_its_ticket_or_address() {
    let mut echo = Listening::start(&["tcp://127.0.0.1:0", "--echo"]).await;
    let ticket = echo.wait_for("ticket", |e| e["event"] == "ticket").await["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let e = perf(&[
        "--to", &ticket, "--size", "256", "--bytes", "25600", "--rounds", "20",
    ])
    .await;
    check_consistent(&e, "tcp", 256, 20);
    assert_eq!(int(&e, "delivered"), 100, "{e}");
    assert_eq!(e["remote"], echo.peer_id.as_str(), "{e}");

    // Without --echo: throughput only, round trips reported as not measured.
    let silent = Listening::start(&["tcp://127.0.0.1:0"]).await;
    let e = perf(&[
        "--to",
        &silent.address,
        "--peer",
        &silent.peer_id,
        "--size",
        "100",
        "--bytes",
        "1000",
    ])
    .await;
    assert_eq!(int(&e, "delivered"), 10, "{e}");
    assert_eq!(int(&e, "rounds"), 0, "{e}");
    assert!(
        e["rtt_p50_us"].is_null() && e["rtt_p99_us"].is_null(),
        "{e}"
    );
}

#[tokio::test]
async fn impossible_requests_fail_with_a_reason() {
    let big = run_json(&["perf", "--transport", "udp", "--size", "70000"]).await;
    assert!(!big.success);
    assert!(big.stderr.contains("datagram"), "{}", big.stderr);
    let zero = run_json(&["perf", "--transport", "tcp", "--size", "0"]).await;
    assert!(!zero.success);
    assert!(zero.stderr.contains("--size"), "{}", zero.stderr);
    let both = run_json(&[
        "perf",
        "--transport",
        "tcp",
        "--bytes",
        "10",
        "--duration",
        "1",
    ])
    .await;
    assert!(!both.success && both.events.is_empty(), "usage error");
    let neither = run_json(&["perf", "--size", "10"]).await;
    assert!(!neither.success && neither.events.is_empty(), "usage error");
}
