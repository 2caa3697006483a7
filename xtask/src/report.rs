//! The conformance table: one row per case, one column per backend.
//!
//! Cells are `pass`, `FAIL`, `skip` (ignored) or `-` (the case does not apply to, or was not run
//! for, that backend). Rows and columns are sorted by name so the table is the same whatever
//! order the tests finished in. Below the table: a totals line per backend, the reasons for
//! skipped cases, and one closing `conformance: N passed, N failed, N skipped` line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::libtest::{Outcome, TestResult};

/// The column of tests whose name has no `<backend>::` part.
const NO_BACKEND: &str = "(none)";

/// Counts for one backend, or for the whole run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Cases that passed.
    pub(crate) passed: usize,
    /// Cases that failed.
    pub(crate) failed: usize,
    /// Cases that were ignored.
    pub(crate) skipped: usize,
}

impl Totals {
    /// Counts one outcome.
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Ignored(_) => self.skipped += 1,
        }
    }

    /// Cases that actually ran (passed or failed).
    pub(crate) fn ran(&self) -> usize {
        self.passed + self.failed
    }
}

/// Results arranged by case and backend.
#[derive(Debug, Default)]
pub(crate) struct Table<'a> {
    /// Backend names, sorted.
    backends: BTreeSet<&'a str>,
    /// Case -> backend -> outcome; a later result for the same test replaces an earlier one.
    cells: BTreeMap<&'a str, BTreeMap<&'a str, &'a Outcome>>,
}

impl<'a> Table<'a> {
    /// Arranges `results` into a table.
    pub(crate) fn new(results: &'a [TestResult]) -> Self {
        let mut table = Self::default();
        for result in results {
            let (backend, case) = result.backend_and_case();
            let backend = backend.unwrap_or(NO_BACKEND);
            table.backends.insert(backend);
            table
                .cells
                .entry(case)
                .or_default()
                .insert(backend, &result.outcome);
        }
        table
    }

    /// Totals for one backend.
    fn backend_totals(&self, backend: &str) -> Totals {
        let mut totals = Totals::default();
        for outcome in self.cells.values().filter_map(|row| row.get(backend)) {
            totals.add(outcome);
        }
        totals
    }

    /// Totals over every backend.
    pub(crate) fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for outcome in self.cells.values().flat_map(BTreeMap::values) {
            totals.add(outcome);
        }
        totals
    }

    /// The table, the totals per backend, skip reasons and the closing line, as text.
    pub(crate) fn render(&self) -> String {
        const CASE: &str = "case";
        let case_width = self
            .cells
            .keys()
            .map(|case| case.len())
            .chain([CASE.len()])
            .max()
            .unwrap_or_default();
        let widths: Vec<usize> = self.backends.iter().map(|b| b.len().max(4)).collect();

        let mut out = String::new();
        let mut line = format!("{CASE:<case_width$}");
        for (backend, width) in self.backends.iter().zip(&widths) {
            let _ = write!(line, "  {backend:<width$}");
        }
        push_line(&mut out, &line);
        let rule_width = case_width + widths.iter().map(|w| w + 2).sum::<usize>();
        push_line(&mut out, &"-".repeat(rule_width));

        for (case, row) in &self.cells {
            let mut line = format!("{case:<case_width$}");
            for (backend, width) in self.backends.iter().zip(&widths) {
                let cell = row.get(backend).map_or("-", |outcome| cell_text(outcome));
                let _ = write!(line, "  {cell:<width$}");
            }
            push_line(&mut out, &line);
        }

        out.push('\n');
        let name_width = self.backends.iter().map(|b| b.len()).max().unwrap_or(0);
        for backend in &self.backends {
            let t = self.backend_totals(backend);
            push_line(
                &mut out,
                &format!(
                    "{backend:<name_width$}  {} pass, {} FAIL, {} skip",
                    t.passed, t.failed, t.skipped
                ),
            );
        }

        let reasons: Vec<String> = self
            .cells
            .iter()
            .flat_map(|(case, row)| {
                row.iter()
                    .filter_map(move |(backend, outcome)| match outcome {
                        Outcome::Ignored(Some(reason)) => {
                            Some(format!("  {backend}::{case}: {reason}"))
                        }
                        _ => None,
                    })
            })
            .collect();
        if !reasons.is_empty() {
            out.push_str("\nskipped:\n");
            for reason in reasons {
                push_line(&mut out, &reason);
            }
        }

        let t = self.totals();
        let _ = writeln!(
            out,
            "\nconformance: {} passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
        );
        out
    }
}

/// The text of one cell.
fn cell_text(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "pass",
        Outcome::Failed => "FAIL",
        Outcome::Ignored(_) => "skip",
    }
}

/// Appends `line` without trailing spaces, and a newline.
fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libtest::parse;

    #[test]
    fn renders_cells_totals_and_reasons() {
        let output = "\
test tcp::identity_right_peer ... ok
test ble-sim-23::max_message_crosses ... FAILED
test tcp::max_message_crosses ... ok
test ble-sim-23::identity_right_peer ... ok
test ble-hw::identity_right_peer ... ignored, no adapter
test tcp::half_close ... ignored
";
        let results = parse(output).results;
        let table = Table::new(&results);
        let expected = "\
case                 ble-hw  ble-sim-23  tcp
---------------------------------------------
half_close           -       -           skip
identity_right_peer  skip    pass        pass
max_message_crosses  -       FAIL        pass

ble-hw      0 pass, 0 FAIL, 1 skip
ble-sim-23  1 pass, 1 FAIL, 0 skip
tcp         2 pass, 0 FAIL, 1 skip

skipped:
  ble-hw::identity_right_peer: no adapter

conformance: 3 passed, 1 failed, 2 skipped
";
        assert_eq!(table.render(), expected);
        assert_eq!(
            table.totals(),
            Totals {
                passed: 3,
                failed: 1,
                skipped: 2
            }
        );
        assert_eq!(table.totals().ran(), 4);
    }

    #[test]
    fn later_result_replaces_earlier_and_bare_names_get_a_column() {
        let results =
            parse("test mem::a ... FAILED\ntest mem::a ... ok\ntest lone ... ok\n").results;
        let table = Table::new(&results);
        let expected = "\
case  (none)  mem
------------------
a     -       pass
lone  pass    -

(none)  1 pass, 0 FAIL, 0 skip
mem     1 pass, 0 FAIL, 0 skip

conformance: 2 passed, 0 failed, 0 skipped
";
        assert_eq!(table.render(), expected);
    }

    #[test]
    fn empty_run() {
        let table = Table::new(&[]);
        assert_eq!(table.totals().ran(), 0);
        assert_eq!(
            table.render(),
            "case\n----\n\n\nconformance: 0 passed, 0 failed, 0 skipped\n"
        );
    }
}
