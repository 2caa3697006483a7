//! The no-silent-loss acceptance test, with real processes on loopback and default settings on
//! both sides: for each of tcp, quic, ws and udp, `send --count 5000 --size 100` back to back
//! to a `listen`; `send` must exit 0 and the listener's application must hold every index
//! exactly once (in order: one priority, one peer).

#![cfg(unix)]

mod common;

use common::{node, of_kind, wait_for, Listening};

const COUNT: usize = 5_000;

async fn burst(scheme_addr: &str) {
    let mut listener = Listening::start(&[scheme_addr]).await;
    // The listener's events channel holds 8,192: enough for the whole burst unread.
    let status = node()
        .args([
            "--json",
            "send",
            &listener.address,
            "--peer",
            &listener.peer_id,
        ])
        .args(["--count", &COUNT.to_string(), "--size", "100"])
        .output()
        .await
        .expect("run send");
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{scheme_addr}: send failed: {stdout} {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mut indices = Vec::with_capacity(COUNT);
    while indices.len() < COUNT {
        let m = wait_for(&mut listener.events, "message", |e| e["event"] == "message").await;
        let text = m["text"].as_str().expect("text");
        let index: usize = text
            .split(' ')
            .next()
            .and_then(|i| i.parse().ok())
            .expect("index");
        indices.push(index);
    }
    assert_eq!(indices, (0..COUNT).collect::<Vec<_>>(), "{scheme_addr}");
    let rest = listener.interrupt().await;
    assert!(
        of_kind(&rest, "message").is_empty(),
        "{scheme_addr}: a duplicate arrived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_5000_arrives_once_over_every_network_backend() {
    for addr in [
        "tcp://127.0.0.1:0",
        "quic://127.0.0.1:0",
        "ws://127.0.0.1:0/bitcraps",
        "udp://127.0.0.1:0",
    ] {
        burst(addr).await;
    }
}

/// The listener dies (SIGKILL) mid-stream and does not come back: `send` must exit non-zero,
/// report an `undelivered` count and an `error` of kind `Undelivered`, and every message must
/// be accounted for: received by the listener before it died, or reported undelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_dies_mid_stream_is_reported_not_silent() {
    const PACED: usize = 400;
    let mut listener = Listening::start(&["tcp://127.0.0.1:0"]).await;
    let mut sender = node()
        .args([
            "--json",
            "send",
            &listener.address,
            "--peer",
            &listener.peer_id,
        ])
        .args([
            "--count",
            &PACED.to_string(),
            "--interval",
            "2",
            "--timeout-ms",
            "2000",
        ])
        .spawn()
        .expect("spawn send");
    let mut sent_events = common::json_lines(&mut sender);
    let mut received = 0usize;
    while received < 50 {
        wait_for(&mut listener.events, "message", |e| e["event"] == "message").await;
        received += 1;
    }
    let status = std::process::Command::new("kill")
        .args(["-KILL", &listener.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    // Whatever the listener printed before it died.
    while let Ok(Some(e)) = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        listener.events.recv(),
    )
    .await
    {
        if e["event"] == "message" {
            received += 1;
        }
    }
    let exit = tokio::time::timeout(common::GUARD * 3, sender.wait())
        .await
        .expect("send exits")
        .expect("send status");
    assert!(
        !exit.success(),
        "send must not exit 0 after losing its peer"
    );
    let mut events = Vec::new();
    while let Some(e) = sent_events.recv().await {
        events.push(e);
    }
    let undelivered: usize = of_kind(&events, "undelivered")
        .iter()
        .map(|e| e["count"].as_u64().expect("count") as usize)
        .sum();
    let errors = of_kind(&events, "error");
    assert!(
        errors.iter().any(|e| e["kind"] == "Undelivered"),
        "{events:?}"
    );
    assert!(undelivered > 0, "{events:?}");
    // Nothing silently lost: every accepted message was delivered before the kill or is
    // reported (one whose acknowledgement died with the listener may be both); the rest were
    // never accepted, and the error says how many.
    let summary = errors
        .iter()
        .find(|e| e["kind"] == "Undelivered")
        .and_then(|e| e["error"].as_str())
        .expect("the summary");
    let never: usize = summary
        .split(" were never sent")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the never-sent count");
    assert!(
        received + undelivered + never >= PACED,
        "received {received} + undelivered {undelivered} + never sent {never} < {PACED}: {summary}"
    );
}
