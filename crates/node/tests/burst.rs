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
