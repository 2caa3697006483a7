//! Discovery through real processes: two `bitcraps-node listen --discover` on the loopback
//! interface (mDNS multicast on `lo`, nothing leaves the machine) find each other, connect
//! and exchange messages both ways with receipts, and no address of the other is ever typed;
//! when one stops, the other reports it lost. Everything is judged from the `--json` output,
//! and every line printed is held against docs/cli.md.

#![cfg(unix)]

mod common;

use std::collections::BTreeSet;

use common::doc::{check, documented};
use common::{Listening, GUARD};
use serde_json::Value;

/// A service type of this test run's own (a DNS-SD service name is at most 15 characters), so
/// other bitcraps nodes on the machine never take part.
fn service_type() -> String {
    format!("_bcn{:04x}._udp.local.", std::process::id() & 0xffff)
}

/// Starts `listen --discover` on loopback only, with control input.
async fn discovering(ty: &str) -> Listening {
    Listening::with_control(&[
        "tcp://127.0.0.1:0",
        "--discover",
        "--discover-service",
        ty,
        "--discover-interface",
        "loopback",
    ])
    .await
}

/// An event wanted: its name and a test of its fields.
type Wanted<'a> = (&'a str, &'a dyn Fn(&Value) -> bool);

/// Waits until `node` has printed every event `wanted` names (in any order), keeping all it
/// printed in `log`.
async fn wait_all(node: &mut Listening, log: &mut Vec<Value>, wanted: &[Wanted<'_>]) {
    let mut missing: BTreeSet<usize> = (0..wanted.len()).collect();
    tokio::time::timeout(GUARD, async {
        while !missing.is_empty() {
            let Some(e) = node.events.recv().await else {
                panic!("output ended; still waiting for {missing:?}");
            };
            missing.retain(|&i| !(e["event"] == wanted[i].0 && (wanted[i].1)(&e)));
            log.push(e);
        }
    })
    .await
    .unwrap_or_else(|_| {
        let names: Vec<&str> = missing.iter().map(|&i| wanted[i].0).collect();
        panic!("timed out waiting for {names:?}; printed: {log:#?}")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_listeners_find_each_other_and_exchange_messages_with_no_address_typed() {
    let ty = service_type();
    let mut a = discovering(&ty).await;
    let mut b = discovering(&ty).await;
    let (a_id, b_id) = (a.peer_id.clone(), b.peer_id.clone());
    let (a_addr, b_addr) = (a.address.clone(), b.address.clone());
    let (mut a_log, mut b_log) = (Vec::new(), Vec::new());

    // Each discovers the other at the route it listens on, and they connect (one dials,
    // expecting the announced peer id; the other accepts).
    let found = |peer: &str, route: &str| {
        let (peer, route) = (peer.to_string(), route.to_string());
        move |e: &Value| {
            e["peer_id"] == peer.as_str()
                && e["source"] == "mdns"
                && e["routes"] == serde_json::json!([route])
        }
    };
    let with = |peer: &str| {
        let peer = peer.to_string();
        move |e: &Value| e["peer_id"] == peer.as_str()
    };
    let (a_found_b, a_has_b) = (found(&b_id, &b_addr), with(&b_id));
    wait_all(
        &mut a,
        &mut a_log,
        &[("peer_discovered", &a_found_b), ("connected", &a_has_b)],
    )
    .await;
    let (b_found_a, b_has_a) = (found(&a_id, &a_addr), with(&a_id));
    wait_all(
        &mut b,
        &mut b_log,
        &[("peer_discovered", &b_found_a), ("connected", &b_has_a)],
    )
    .await;

    // Messages both ways, each with a receipt.
    a.control(&format!("send {b_id} bet 5 on 7 from a")).await;
    b.control(&format!("send {a_id} bet 6 on 8 from b")).await;
    let from = |peer: &str, text: &str| {
        let (peer, text) = (peer.to_string(), text.to_string());
        move |e: &Value| e["peer_id"] == peer.as_str() && e["text"] == text.as_str()
    };
    let delivered = |peer: &str, bytes: usize| {
        let peer = peer.to_string();
        move |e: &Value| e["peer_id"] == peer.as_str() && e["bytes"] == bytes && e["id"].is_u64()
    };
    let (a_got, a_receipt) = (from(&b_id, "bet 6 on 8 from b"), delivered(&b_id, 17));
    wait_all(
        &mut a,
        &mut a_log,
        &[("message", &a_got), ("delivered", &a_receipt)],
    )
    .await;
    let (b_got, b_receipt) = (from(&a_id, "bet 5 on 7 from a"), delivered(&a_id, 17));
    wait_all(
        &mut b,
        &mut b_log,
        &[("message", &b_got), ("delivered", &b_receipt)],
    )
    .await;

    // b stops: its goodbye makes a report it lost (and its session ends).
    b_log.extend(b.interrupt().await);
    let (a_lost_b, a_bye) = (with(&b_id), with(&b_id));
    let lost = move |e: &Value| a_lost_b(e) && e["source"] == "mdns";
    wait_all(
        &mut a,
        &mut a_log,
        &[("peer_lost", &lost), ("disconnected", &a_bye)],
    )
    .await;
    a_log.extend(a.interrupt().await);

    // Nothing failed, and every line is a documented event.
    let (common, events) = documented();
    for e in a_log.iter().chain(&b_log) {
        assert_ne!(e["event"], "error", "{e}");
        assert_ne!(e["event"], "undelivered", "{e}");
        check(e, &common, &events);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_discover_finds_a_listener_and_a_missing_one_is_a_clear_error() {
    let ty = format!("_bcs{:04x}._udp.local.", std::process::id() & 0xffff);
    let mut a = discovering(&ty).await;
    let flags = [
        "--discover-service",
        &ty,
        "--discover-interface",
        "loopback",
    ];
    let mut args = vec!["send", "--discover", "--message", "bet 4 on 10"];
    args.extend(flags);
    let sent = common::run_json(&args).await;
    assert!(sent.success, "{}", sent.stderr);
    let found = common::of_kind(&sent.events, "peer_discovered");
    assert_eq!(found.len(), 1, "{:?}", sent.events);
    assert_eq!(found[0]["peer_id"], a.peer_id.as_str());
    assert_eq!(found[0]["routes"], serde_json::json!([a.address.clone()]));
    let summary = common::of_kind(&sent.events, "summary");
    assert_eq!(summary.len(), 1, "{:?}", sent.events);
    assert_eq!(summary[0]["peer_id"], a.peer_id.as_str());
    assert_eq!(summary[0]["messages"], 1);
    a.wait_for("the message", |e| {
        e["event"] == "message" && e["text"] == "bet 4 on 10"
    })
    .await;

    // Looking for a peer nobody announces (a valid id of a fresh key no node runs with)
    // gives a clear error once the wait is over.
    let nobody = bitcraps_transport_core::Keypair::generate()
        .peer_id()
        .to_string();
    let mut args = vec!["send", "--discover", "--peer", &nobody, "--wait-ms", "1000"];
    args.extend(["--message", "x"]);
    args.extend(flags);
    let missing = common::run_json(&args).await;
    assert!(!missing.success);
    let errors = common::of_kind(&missing.events, "error");
    assert_eq!(errors.len(), 1, "{:?}", missing.events);
    let text = errors[0]["error"].as_str().expect("error text");
    assert!(
        text.contains(&format!("peer {nobody} heard over mDNS")),
        "{text}"
    );

    // Discovery settings without --discover would do nothing: refused.
    let peer = a.peer_id.clone();
    let target = [
        a.address.as_str(),
        "--peer",
        peer.as_str(),
        "--message",
        "x",
    ];
    for extra in [
        &["--wait-ms", "5"][..],
        &["--discover-interface", "loopback"][..],
    ] {
        let mut args = vec!["send"];
        args.extend(target);
        args.extend(extra);
        let refused = common::run_json(&args).await;
        assert!(!refused.success, "{extra:?}");
        assert!(refused.stderr.contains("need"), "{}", refused.stderr);
    }

    let (common, events) = documented();
    for e in sent.events.iter().chain(&missing.events) {
        check(e, &common, &events);
    }
    a.interrupt().await;
}
