//! `bitcraps-node --json demo` end to end: four players over BLE (simulated), TCP, WebSocket
//! and QUIC; dave's QUIC route goes dark and comes back. From the output alone: the failover
//! to TCP and the switch-back to QUIC happened, the QUIC breaker opened, and every bet was
//! acknowledged and taken by the table exactly once; every player found the table by mDNS
//! discovery (on the loopback interface).

#![cfg(unix)]

mod common;

use common::{node, of_kind, run_json, GUARD};

#[tokio::test]
async fn demo_fails_over_and_back_and_every_bet_is_acknowledged_once() {
    let run = run_json(&["demo"]).await;
    assert!(run.success, "demo failed: {}", run.stderr);
    let listening = of_kind(&run.events, "listening");
    assert_eq!(listening.len(), 4);

    // Every player found the table by discovery (its announced ticket, all four routes).
    let table = listening[0]["peer_id"].as_str().expect("the table's id");
    for name in ["alice", "bob", "carol", "dave"] {
        let found = format!("finds the table {table} over mdns (4 routes)");
        assert!(
            of_kind(&run.events, "said")
                .iter()
                .any(|e| e["name"] == name && e["text"] == found.as_str()),
            "{name} did not find the table by discovery"
        );
    }

    // Route changes away from QUIC (to TCP), then back to the same QUIC route.
    let moves: Vec<(String, String)> = of_kind(&run.events, "route_changed")
        .into_iter()
        .filter_map(|e| Some((e["from"].as_str()?.to_owned(), e["to"].as_str()?.to_owned())))
        .collect();
    assert_eq!(moves.len(), 2, "{moves:?}");
    assert!(
        moves[0].0.starts_with("quic://") && moves[0].1.starts_with("tcp://"),
        "{moves:?}"
    );
    assert_eq!(
        (&moves[1].0, &moves[1].1),
        (&moves[0].1, &moves[0].0),
        "{moves:?}"
    );
    let quic = &moves[0].0;
    let breaker: Vec<&str> = of_kind(&run.events, "breaker")
        .into_iter()
        .filter(|e| e["route"] == quic.as_str())
        .filter_map(|e| e["state"].as_str())
        .collect();
    assert!(breaker.contains(&"open"), "{breaker:?}");
    assert_eq!(breaker.last(), Some(&"closed"), "{breaker:?}");

    // Every bet: taken by the table exactly once, and acknowledged to its player.
    let said = of_kind(&run.events, "said");
    let takes: Vec<&str> = said
        .iter()
        .filter(|e| e["name"] == "table")
        .filter_map(|e| e["text"].as_str()?.strip_prefix("takes "))
        .collect();
    for name in ["alice", "bob", "carol", "dave"] {
        for round in 1..=5 {
            let bet = format!("{name} round {round}: 5 on pass");
            assert_eq!(takes.iter().filter(|t| **t == bet).count(), 1, "{bet}");
        }
        let stats = of_kind(&run.events, "player_stats")
            .into_iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no player_stats for {name}"));
        for (field, want) in [
            ("sent", 5),
            ("acknowledged", 5),
            ("undelivered", 0),
            ("received_by_table", 5),
        ] {
            assert_eq!(stats[field], want, "{name}.{field}: {stats}");
        }
        let changes = if name == "dave" { 2 } else { 0 };
        assert_eq!(stats["route_changes"], changes, "{name}: {stats}");
        assert!(
            stats["rtt_max_ms"].as_f64().expect("a number")
                >= stats["rtt_mean_ms"].as_f64().expect("a number"),
            "{stats}"
        );
    }
    assert_eq!(of_kind(&run.events, "player_stats").len(), 4);
    assert_eq!(takes.len(), 20, "{takes:?}");

    // Human mode says the same things readably.
    let out = tokio::time::timeout(GUARD, node().arg("demo").output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "route changed",
        "breaker",
        "rolls",
        "stats:",
        "acknowledged 5 undelivered 0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
