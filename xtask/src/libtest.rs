//! A tolerant parser for the result lines of a libtest run (`cargo test` output).
//!
//! libtest prints one line per test, `test <name> ... ok|FAILED|ignored[, <reason>]`, optionally
//! with ` - should panic` after the name or a `[kind] ` before it (libtest-mimic). Output that tests
//! write straight to the process's standard output is not captured by libtest and may land in
//! front of a result line, or between `test <name> ... ` and its outcome when tests run one at a
//! time; both are handled. The closing `failures:` list fills in tests whose outcome was lost.

use std::collections::BTreeSet;

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `ok`.
    Passed,
    /// `FAILED`.
    Failed,
    /// `ignored`, with the reason from `#[ignore = "..."]` if there is one.
    Ignored(Option<String>),
}

/// One test and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestResult {
    /// The full libtest name, e.g. `ble-sim-23::max_message_crosses`.
    pub(crate) name: String,
    /// How it ended.
    pub(crate) outcome: Outcome,
}

impl TestResult {
    /// The backend and case of a `<backend>::<case>` name (split at the first `::`); a name with
    /// no `::` has no backend.
    pub(crate) fn backend_and_case(&self) -> (Option<&str>, &str) {
        match self.name.split_once("::") {
            Some((backend, case)) => (Some(backend), case),
            None => (None, &self.name),
        }
    }
}

/// Everything recognised in one run's output.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Results in the order they were reported.
    pub(crate) results: Vec<TestResult>,
    /// Tests announced (`test <name> ... `) whose outcome could not be found.
    pub(crate) unresolved: Vec<String>,
}

/// Parses libtest output into results.
pub(crate) fn parse(output: &str) -> Parsed {
    let mut parsed = Parsed::default();
    // A test announced with no outcome on its line yet (tests running one at a time).
    let mut pending: Option<String> = None;
    let mut failures_list = BTreeSet::new();
    let mut in_failures_list = false;

    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        let found = find_results(line);
        if !found.is_empty() {
            for (name, outcome) in found {
                if let Some(lost) = pending.take() {
                    parsed.unresolved.push(lost);
                }
                match outcome {
                    Some(outcome) => parsed.results.push(TestResult { name, outcome }),
                    None => pending = Some(name),
                }
            }
            in_failures_list = false;
            continue;
        }
        if let Some(outcome) = parse_outcome(line.trim()) {
            if let Some(name) = pending.take() {
                parsed.results.push(TestResult { name, outcome });
                continue;
            }
        }
        // The closing list: "failures:" then one indented name per line, then a blank line.
        // (The first "failures:" section holds "---- name stdout ----" blocks; those lines are
        // not indented by four spaces, so they are not mistaken for names.)
        if line == "failures:" {
            in_failures_list = true;
        } else if in_failures_list {
            match line.strip_prefix("    ") {
                Some(name) if is_test_name(name) => {
                    failures_list.insert(name.to_owned());
                }
                _ => in_failures_list = false,
            }
        }
    }
    if let Some(lost) = pending {
        parsed.unresolved.push(lost);
    }

    // Tests that failed but whose result line was garbled.
    parsed.unresolved.retain(|name| {
        if failures_list.contains(name) && !parsed.results.iter().any(|r| &r.name == name) {
            parsed.results.push(TestResult {
                name: name.clone(),
                outcome: Outcome::Failed,
            });
            false
        } else {
            !parsed.results.iter().any(|r| &r.name == name)
        }
    });
    parsed
}

/// Finds every `test <name> ... <rest>` in `line`, in order (output written by tests may come
/// first, or an announcement may be cut short by the next one).
///
/// Each comes with its outcome, or `None` if `<rest>` does not start with one.
fn find_results(line: &str) -> Vec<(String, Option<Outcome>)> {
    line.match_indices("test ")
        .filter_map(|(start, _)| split_announcement(&line[start + "test ".len()..]))
        .map(|(name, rest)| (name.to_owned(), parse_outcome(rest)))
        .collect()
}

/// Splits `[kind] <name>[ - should panic] ... <rest>` into the name and `<rest>`.
fn split_announcement(text: &str) -> Option<(&str, &str)> {
    // libtest-mimic pads names (and the space where a `[kind]` would go) to a common width.
    let text = text.trim_start();
    let text = match text.strip_prefix('[') {
        Some(kinded) => kinded.split_once("] ")?.1.trim_start(),
        None => text,
    };
    let (name, rest) = text.split_once(" ... ")?;
    let name = name.trim_end();
    let name = name
        .strip_suffix(" - should panic")
        .unwrap_or(name)
        .trim_end();
    is_test_name(name).then_some((name, rest))
}

/// A libtest name as the suite uses them: non-empty, no whitespace.
fn is_test_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace)
}

/// Parses an outcome: `ok`, `FAILED`, `ignored` or `ignored, <reason>`, maybe followed by more
/// words (such as `<0.012s>` from `--report-time`).
fn parse_outcome(text: &str) -> Option<Outcome> {
    let text = text.trim_end();
    if let Some(reason) = text.strip_prefix("ignored, ") {
        let reason = reason.trim();
        return Some(Outcome::Ignored(
            (!reason.is_empty()).then(|| reason.to_owned()),
        ));
    }
    match text.split_whitespace().next()? {
        "ok" => Some(Outcome::Passed),
        "FAILED" => Some(Outcome::Failed),
        "ignored" => Some(Outcome::Ignored(None)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, outcome: Outcome) -> TestResult {
        TestResult {
            name: name.to_owned(),
            outcome,
        }
    }

    #[test]
    fn libtest_mimic_padded_names_with_kinds() {
        let output = "\
test       tcp::size_one                       ... ok
test [n/a] memory::datagram_no_duplicates ... ignored
test       ble-sim-23::ten_thousand_in_order   ... FAILED
";
        let parsed = parse(output);
        let names: Vec<&str> = parsed.results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tcp::size_one",
                "memory::datagram_no_duplicates",
                "ble-sim-23::ten_thousand_in_order"
            ]
        );
        assert_eq!(parsed.results[2].outcome, Outcome::Failed);
    }

    #[test]
    fn plain_libtest_output() {
        let output = "\
running 4 tests
test tcp::identity_right_peer ... ok
test ble-sim-23::max_message_crosses ... FAILED
test ble-hw::pairs ... ignored
test ble-hw::max_message_crosses ... ignored, needs a Bluetooth adapter (set BITCRAPS_BLE=1)

failures:

---- ble-sim-23::max_message_crosses stdout ----
thread 'ble-sim-23::max_message_crosses' panicked at tests/src/cases.rs:10:5:
test tcp::fake ... this is not a result line

failures:
    ble-sim-23::max_message_crosses

test result: FAILED. 1 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s
";
        let parsed = parse(output);
        assert_eq!(
            parsed.results,
            [
                result("tcp::identity_right_peer", Outcome::Passed),
                result("ble-sim-23::max_message_crosses", Outcome::Failed),
                result("ble-hw::pairs", Outcome::Ignored(None)),
                result(
                    "ble-hw::max_message_crosses",
                    Outcome::Ignored(Some(
                        "needs a Bluetooth adapter (set BITCRAPS_BLE=1)".to_owned()
                    ))
                ),
            ]
        );
        assert_eq!(parsed.unresolved, ["tcp::fake"]);
        assert_eq!(
            parsed.results[1].backend_and_case(),
            (Some("ble-sim-23"), "max_message_crosses")
        );
    }

    #[test]
    fn interleaved_output_from_tests() {
        let output = "\
2025-01-01T00:00:00Z INFO listening on 127.0.0.1:4000test tcp::a ... ok
test mem::b ... listener started
  more log
ok
[DEBUG] xtest tcp::c ... test ws::d ... FAILED
test quic::e ... ignored, slow <0.002s>
test udp::f - should panic ... ok <0.001s>
test [conformance] ble-sim-23::g ... ok
";
        let parsed = parse(output);
        assert_eq!(
            parsed.results,
            [
                result("tcp::a", Outcome::Passed),
                result("mem::b", Outcome::Passed),
                result("ws::d", Outcome::Failed),
                result(
                    "quic::e",
                    Outcome::Ignored(Some("slow <0.002s>".to_owned()))
                ),
                result("udp::f", Outcome::Passed),
                result("ble-sim-23::g", Outcome::Passed),
            ]
        );
        assert_eq!(parsed.unresolved, ["tcp::c"]);
    }

    #[test]
    fn lost_outcome_of_a_failure_comes_from_the_failures_list() {
        let output = "\
test tcp::a ... test tcp::b ... ok
thread 'tcp::a' panicked at boom

failures:
    tcp::a

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
";
        let parsed = parse(output);
        assert_eq!(
            parsed.results,
            [
                result("tcp::b", Outcome::Passed),
                result("tcp::a", Outcome::Failed)
            ]
        );
        assert!(parsed.unresolved.is_empty());
    }

    #[test]
    fn summary_and_other_lines_are_not_results() {
        let output = "\
running 0 tests
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 5 filtered out
   Compiling bitcraps-conformance v0.1.0
     Running tests/conformance.rs (target/debug/deps/conformance-0123)
   Doc-tests bitcraps
test src/lib.rs - foo (line 3) ... ok
";
        assert_eq!(parse(output), Parsed::default());
    }

    #[test]
    fn names_without_a_backend() {
        let parsed = parse("test standalone ... ok\r\n");
        assert_eq!(parsed.results, [result("standalone", Outcome::Passed)]);
        assert_eq!(parsed.results[0].backend_and_case(), (None, "standalone"));
        let nested = result("tcp::close::half", Outcome::Passed);
        assert_eq!(nested.backend_and_case(), (Some("tcp"), "close::half"));
    }
}
