//! docs/cli.md as data: the common fields and each event's field table from `## Events`,
//! and [`check`], which holds one printed JSON event against them (every field documented,
//! of its documented type; every field not marked optional present; schema version 1).

use std::collections::BTreeMap;

use serde_json::Value;

/// docs/cli.md, as built into the test.
pub const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md"));

/// One documented field: its type text (`string`, `integer or null`, `string, optional`...).
pub type Fields = BTreeMap<String, String>;

/// The doc's `## Name` section (up to the next `## `).
pub fn section(name: &str) -> &'static str {
    let start = DOC
        .find(&format!("\n## {name}\n"))
        .unwrap_or_else(|| panic!("docs/cli.md has no ## {name}"));
    let body = &DOC[start + name.len() + 5..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

/// The rows of the first table in `text`: first cell (backticks off) to second cell.
pub fn table(text: &str) -> Fields {
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
pub fn documented() -> (Fields, BTreeMap<String, Fields>) {
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
pub fn type_fits(ty: &str, value: &Value) -> bool {
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
        "array of strings" => value
            .as_array()
            .is_some_and(|a| a.iter().all(|v| v.is_string())),
        other => panic!("docs/cli.md: unknown type {other:?}"),
    }
}

/// Checks one printed event against the doc; returns its name.
pub fn check(event: &Value, common: &Fields, events: &BTreeMap<String, Fields>) -> String {
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
