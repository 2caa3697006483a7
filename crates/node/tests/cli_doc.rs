//! docs/cli.md against the real binary: every command and option `--help` lists is documented,
//! and every JSON line printed by `listen` (with `--metrics`), `send`, a failing `send`, a
//! malformed ticket, `perf` and `demo` is a documented event with exactly the documented fields, of the
//! documented types. The doc's event tables are parsed here (see "How to add an event" there).

#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{json_lines, next, node, run_json, GUARD};
use serde_json::Value;

const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md"));

/// One documented field: its type text (`string`, `integer or null`, `string, optional`...).
type Fields = BTreeMap<String, String>;

/// The doc's `## Name` section (up to the next `## `).
fn section(name: &str) -> &'static str {
    let start = DOC
        .find(&format!("\n## {name}\n"))
        .unwrap_or_else(|| panic!("docs/cli.md has no ## {name}"));
    let body = &DOC[start + name.len() + 5..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

/// The rows of the first table in `text`: first cell (backticks off) to second cell.
fn table(text: &str) -> Fields {
    text.lines()
        .skip_while(|l| !l.starts_with("| "))
        .take_while(|l| l.starts_with('|'))
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].to_string())
        })
        .collect()
}

/// The common fields and every event's own fields, from the `## Events` section.
fn documented() -> (Fields, BTreeMap<String, Fields>) {
    let events = section("Events");
    let common = table(events);
    let mut out = BTreeMap::new();
    for part in events.split("\n### `").skip(1) {
        let (name, rest) = part.split_once("`\n").expect("### `name` heading");
        assert!(
            out.insert(name.to_string(), table(rest)).is_none(),
            "{name} twice"
        );
    }
    (common, out)
}

/// True if `value` is of the documented type.
fn type_fits(ty: &str, value: &Value) -> bool {
    let base = ty.trim_end_matches(", optional");
    let (base, nullable) = match base.strip_suffix(" or null") {
        Some(b) => (b, true),
        None => (base, false),
    };
    if value.is_null() {
        return nullable;
    }
    match base {
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "array of integers" => value
            .as_array()
            .is_some_and(|a| a.iter().all(|v| v.is_u64())),
        other => panic!("docs/cli.md: unknown type {other:?}"),
    }
}

/// Checks one printed event against the doc; returns its name.
fn check(event: &Value, common: &Fields, events: &BTreeMap<String, Fields>) -> String {
    let obj = event
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {event}"));
    let name = obj["event"].as_str().expect("an event name").to_string();
    let own = events
        .get(&name)
        .unwrap_or_else(|| panic!("event {name:?} is not in docs/cli.md: {event}"));
    let all: Fields = common
        .iter()
        .chain(own)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, value) in obj {
        let ty = all
            .get(key)
            .unwrap_or_else(|| panic!("{name}: field {key:?} is not in docs/cli.md: {event}"));
        assert!(type_fits(ty, value), "{name}.{key} is not {ty}: {event}");
    }
    for (key, ty) in &all {
        if !ty.ends_with(", optional") {
            assert!(
                obj.contains_key(key),
                "{name}: documented {key:?} missing: {event}"
            );
        }
    }
    assert_eq!(obj["v"], 1, "schema version: {event}");
    name
}

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

    let mut listener = node()
        .args([
            "--json",
            "listen",
            "tcp://127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .args(["--reconnect-grace-ms", "500"])
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
        "connected",
        "message",
        "disconnected",
        "summary",
        "error",
        "said",
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
