//! The failover acceptance test, with real processes on loopback: one node listens on TCP
//! (route A) and QUIC (route B); `send A B --count 200 --interval 5` streams to it; once 50
//! messages have arrived, route A is closed through the listener's control input. The sender
//! must fail over to B (printing `route_changed`) and exit 0, and the listener must print
//! every message exactly once, in order (the coordinator's guarantee for messages of one
//! priority to one peer, across failovers).

#![cfg(unix)]

mod common;

use common::{json_lines, node, of_kind, wait_for, Listening, GUARD};

const COUNT: usize = 200;
const KILL_AFTER: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_fails_over_to_the_second_route_and_every_message_arrives_once_in_order() {
    let mut listener = Listening::with_control(&["tcp://127.0.0.1:0", "quic://127.0.0.1:0"]).await;
    let routes = listener.addresses(1).await;
    let (route_a, route_b) = (routes[0].clone(), routes[1].clone());
    assert!(route_a.starts_with("tcp://") && route_b.starts_with("quic://"));

    let mut sender = node()
        .args(["--json", "send", &route_a, &route_b])
        .args(["--peer", &listener.peer_id])
        .args(["--count", &COUNT.to_string(), "--interval", "5"])
        .spawn()
        .expect("spawn sender");
    let mut sent_events = json_lines(&mut sender);

    // The listener's side: every message, closing route A after the first 50.
    let mut texts = Vec::new();
    let mut closed_at = None;
    let mut switched_at = None;
    let mut first_after_switch = None;
    let mut listener_events = Vec::new();
    while texts.len() < COUNT {
        let e = wait_for(&mut listener.events, "listener events", |_| true).await;
        match e["event"].as_str().unwrap() {
            "message" => {
                texts.push(e["text"].as_str().unwrap().to_string());
                if switched_at.is_some() && first_after_switch.is_none() {
                    first_after_switch = e["ts_ms"].as_u64();
                }
                if texts.len() == KILL_AFTER {
                    listener.control(&format!("close {route_a}")).await;
                }
            }
            "listener_closed" => {
                assert_eq!(e["address"], route_a.as_str(), "{e}");
                closed_at = e["ts_ms"].as_u64();
            }
            "route_changed" => switched_at = e["ts_ms"].as_u64(),
            _ => {}
        }
        listener_events.push(e);
    }
    for (i, text) in texts.iter().enumerate() {
        assert!(
            text.starts_with(&format!("{i} ")),
            "message {i} out of order or duplicated: {text:?}"
        );
    }
    assert!(closed_at.is_some(), "route A was never closed");

    // The sender's side: it failed over to B and finished cleanly.
    let status = tokio::time::timeout(GUARD, sender.wait())
        .await
        .expect("the sender exits")
        .unwrap();
    let mut sent = Vec::new();
    while let Some(e) = sent_events.recv().await {
        sent.push(e);
    }
    assert!(status.success(), "sender failed: {sent:?}");
    let changes = of_kind(&sent, "route_changed");
    assert!(
        changes
            .iter()
            .any(|c| c["from"] == route_a.as_str() && c["to"] == route_b.as_str()),
        "no failover from A to B in {changes:?}"
    );
    let summary = of_kind(&sent, "summary");
    assert_eq!(summary.len(), 1, "{sent:?}");
    assert_eq!(summary[0]["messages"], COUNT);

    // Figures (printed, not asserted): from the close of route A to the sender's failover,
    // and to the first message the listener received after its own route change.
    let closed = closed_at.unwrap();
    let sender_switch = changes
        .iter()
        .find(|c| c["to"] == route_b.as_str())
        .and_then(|c| c["ts_ms"].as_u64());
    eprintln!(
        "failover: route A closed at {closed}; sender route_changed +{:?} ms; listener \
         route_changed +{:?} ms; first message after it +{:?} ms",
        sender_switch.map(|t| t.saturating_sub(closed)),
        switched_at.map(|t| t.saturating_sub(closed)),
        first_after_switch.map(|t| t.saturating_sub(closed)),
    );

    // Nothing more arrives: exactly COUNT messages, then the shutdown report.
    let rest = listener.interrupt().await;
    assert!(
        of_kind(&rest, "message").is_empty(),
        "extra messages: {rest:?}"
    );
    let stats = of_kind(&rest, "listener_stats");
    assert_eq!(stats.len(), 2, "{rest:?}");
    for s in stats {
        assert_eq!(s["accepted"], 1, "{s}");
    }
    assert!(
        listener_events.iter().all(|e| e["event"] != "error"),
        "{listener_events:?}"
    );
}
