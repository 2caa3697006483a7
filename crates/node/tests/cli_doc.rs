//! docs/cli.md against the real binary: every command and option `--help` lists is
//! documented, and every JSON line printed by `listen` (with `--metrics` and `--discover`),
//! `send`, `send --discover`, a failing `send`, a malformed ticket, `perf` and `demo` is a
//! documented event with exactly the documented fields, of the documented types. The doc's event
//! tables are parsed by `common::doc` (see "How to add an event" there); `tests/discovery.rs`
//! holds its events (`peer_lost`, `delivered`...) against the doc with it too.

#![cfg(unix)]

mod common;

use std::collections::BTreeSet;

use common::doc::{check, documented, section, type_fits, DOC};
use common::{json_lines, next, node, run_json, GUARD};
use serde_json::Value;

#[test]
fn the_doc_tables_parse() {
    let (common, events) = documented();
    assert_eq!(common.keys().collect::<Vec<_>>(), ["event", "ts_ms", "v"]);
    assert!(events.len() >= 20, "{:?}", events.keys());
    for (name, fields) in &events {
        assert!(!fields.is_empty(), "{name} has no field table");
        for ty in fields.values() {
            type_fits(ty, &Value::Null); // panics on an unknown type
        }
    }
}

#[tokio::test]
async fn every_json_line_printed_is_documented() {
    let (common, events) = documented();
    let mut printed: Vec<Value> = Vec::new();

    // Discovery on a service type of this test's own, on the loopback interface only.
    let ty = format!("_bcd{:04x}._udp.local.", std::process::id() & 0xffff);
    let discover = [
        "--discover-service",
        &ty,
        "--discover-interface",
        "loopback",
    ];
    let mut listener = node()
        .args([
            "--json",
            "listen",
            "tcp://127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .args(["--reconnect-grace-ms", "500", "--discover"])
        .args(discover)
        .spawn()
        .expect("spawn listen");
    let mut lines = json_lines(&mut listener);
    let (address, peer_id) = loop {
        let e = next(&mut lines).await;
        printed.push(e.clone());
        if e["event"] == "metrics" {
            let l = &printed[0];
            break (
                l["address"].as_str().unwrap().to_string(),
                l["peer_id"].as_str().unwrap().to_string(),
            );
        }
    };
    let sent = run_json(&["send", &address, "--peer", &peer_id, "--count", "3"]).await;
    assert!(sent.success, "{}", sent.stderr);
    printed.extend(sent.events);
    let mut args = vec!["send", "--discover", "--message", "found you"];
    args.extend(discover);
    let found = run_json(&args).await;
    assert!(found.success, "{}", found.stderr);
    printed.extend(found.events);
    let failed = run_json(&[
        "send",
        "tcp://127.0.0.1:1",
        "--peer",
        &peer_id,
        "--message",
        "x",
    ])
    .await;
    assert!(!failed.success);
    assert!(
        !failed.events.is_empty(),
        "a failing send reports an error event"
    );
    printed.extend(failed.events);
    let bad = run_json(&["send", "--ticket", "BCTnonsense", "--message", "x"]).await;
    assert!(
        !bad.success && bad.events.is_empty(),
        "usage errors print no event"
    );
    assert!(bad.stderr.contains("ticket"), "{}", bad.stderr);
    let perf = run_json(&[
        "perf",
        "--transport",
        "memory",
        "--bytes",
        "1000",
        "--rounds",
        "3",
    ])
    .await;
    assert!(perf.success, "{}", perf.stderr);
    printed.extend(perf.events);
    let demo = run_json(&["demo"]).await;
    assert!(demo.success, "{}", demo.stderr);
    printed.extend(demo.events);

    // The listener saw the sender come and go; then Ctrl-C and its counters.
    loop {
        let e = next(&mut lines).await;
        let gone = e["event"] == "disconnected";
        printed.push(e);
        if gone {
            break;
        }
    }
    let pid = listener.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::timeout(GUARD, async {
        while let Some(e) = lines.recv().await {
            printed.push(e);
        }
    })
    .await
    .expect("listen ends after SIGINT");
    assert!(listener.wait().await.unwrap().success());

    let seen: BTreeSet<String> = printed.iter().map(|e| check(e, &common, &events)).collect();
    for expected in [
        "listening",
        "ticket",
        "metrics",
        "peer_discovered",
        "connected",
        "message",
        "disconnected",
        "summary",
        "error",
        "said",
        "player_stats",
        "route_changed",
        "breaker",
        "listener_stats",
        "shutting_down",
        "transport_stats",
        "perf",
    ] {
        assert!(
            seen.contains(expected),
            "{expected} was not printed: {seen:?}"
        );
    }
}

/// The lines of a `--help` section (`Commands:`, `Options:`) up to the next blank line.
fn help_section(help: &str, heading: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bitcraps-node"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_command_and_option_is_documented() {
    let commands = section("Commands");
    let top = help(&[]);
    let names: Vec<String> = help_section(&top, "Commands:")
        .iter()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect();
    assert!(names.len() >= 3, "{top}");
    for name in &names {
        assert!(
            commands.contains(&format!("### `bitcraps-node {name}`")),
            "command {name} is not in docs/cli.md"
        );
        for line in help_section(&help(&[name]), "Options:") {
            let Some(flag) = line.split_whitespace().find(|w| w.starts_with("--")) else {
                continue;
            };
            if flag == "--help" {
                continue;
            }
            assert!(
                DOC.contains(&format!("`{flag}")),
                "{name} {flag} is not in docs/cli.md"
            );
        }
    }
}
