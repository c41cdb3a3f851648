//! `cargo xtask chaos`: the fault-injection suite (crate `idem-chaos`) on
//! every backend, a table of backend × fault, and its self-test.
//!
//! The servers are the conformance suite's ([`Servers`]); the driver gets
//! each one's URL and container ids (to pause and restart it) and prints
//! one `CELL` line per fault, which this module gathers. The self-test runs
//! the pause fault on Redis with completion retries turned off and passes
//! only if the checker reports violations there.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::servers::{Kind, Servers};
use crate::util::{cargo, run_step};

/// The backends, and the server kind each needs (`None`: a file).
const BACKENDS: [(&str, Option<Kind>); 5] = [
    ("redis", Some(Kind::Redis)),
    ("redis-cluster", Some(Kind::RedisCluster)),
    ("postgres", Some(Kind::Postgres)),
    ("mysql", Some(Kind::Mysql)),
    ("sqlite", None),
];

/// The backends with a transactional mode (the SQL stores).
const TRANSACTIONAL: &[&str] = &["sqlite", "postgres", "mysql"];

/// The labels of the self-test rows: the checker must report violations.
const SELF_TESTS: &[&str] = &[
    "pause (completion retries off)",
    "kill (transactional, claim split)",
];

/// The backends whose every cell passes on the project's CI machines.
const CI_BACKENDS: &[&str] = &["redis", "redis-cluster", "mysql", "sqlite", "postgres"];

/// What to run.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    backends: Vec<&'static str>,
    /// Passed on to the driver as they are (`--fault`, `--keys`, ...).
    driver_args: Vec<String>,
    /// Whether the pause fault is selected (the self-test needs it).
    pause: bool,
    /// Whether the kill fault is selected (the transactional rows).
    kill: bool,
}

impl Selection {
    /// What CI runs: every backend that runs on the project's CI
    /// machines, every fault, every self-test.
    pub(crate) fn for_ci() -> Self {
        let args: Vec<String> = CI_BACKENDS
            .iter()
            .flat_map(|b| ["--backend".to_owned(), (*b).to_owned()])
            .collect();
        Self::parse(&args).unwrap_or_default()
    }

    fn parse(args: &[String]) -> Result<Self, String> {
        let mut only = BTreeSet::new();
        let mut driver_args = Vec::new();
        let mut faults = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let value = args.next().cloned().ok_or(format!("{arg} needs a value"))?;
            match arg.as_str() {
                "--backend" => {
                    if !BACKENDS.iter().any(|(name, _)| *name == value) {
                        let known: Vec<_> = BACKENDS.iter().map(|(n, _)| *n).collect();
                        return Err(format!("no backend `{value}`; known: {}", known.join(", ")));
                    }
                    only.insert(value.clone());
                }
                "--fault" => faults.push(value.clone()),
                "--keys" | "--apps" | "--copies" => {}
                other => {
                    return Err(format!(
                        "unknown argument `{other}` (see cargo xtask --help)"
                    ));
                }
            }
            driver_args.extend([arg.clone(), value]);
        }
        let backends = BACKENDS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| only.is_empty() || only.contains(*name))
            .collect();
        let pause = faults.is_empty() || faults.iter().any(|f| f == "pause");
        let kill = faults.is_empty() || faults.iter().any(|f| f == "kill");
        Ok(Self {
            backends,
            driver_args,
            pause,
            kill,
        })
    }

    /// The server kinds the selected backends need.
    pub(crate) fn kinds(&self) -> Vec<Kind> {
        BACKENDS
            .iter()
            .filter(|(name, _)| self.backends.contains(name))
            .filter_map(|(_, kind)| *kind)
            .collect()
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cell {
    backend: String,
    fault: String,
    verdict: String,
    keys: String,
    runs: String,
    twice: String,
    violations: String,
    note: String,
}

/// `cargo xtask chaos [--backend NAME ...] [--fault NAME ...] [--keys N]
/// [--apps N] [--copies N]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let selection = Selection::parse(args)?;
    let servers = Servers::start(&selection.kinds());
    run_with(&selection, &servers)
}

/// Runs the selection against `servers`, prints the table, and fails when
/// a cell failed (a cell that does not apply is `n/a`, never a pass).
pub(crate) fn run_with(selection: &Selection, servers: &Servers) -> Result<(), String> {
    run_step(
        "cargo build -p idem-chaos",
        cargo().args(["build", "-q", "-p", "idem-chaos", "--bin", "idem-chaos"]),
    )?;
    let mut cells = Vec::new();
    for (name, kind) in BACKENDS
        .iter()
        .filter(|(n, _)| selection.backends.contains(n))
    {
        eprintln!("\n==> chaos: {name}");
        let server = match kind {
            Some(kind) => servers.server(*kind),
            None => Ok((String::new(), Vec::new())),
        };
        match server {
            Ok((url, ids)) => {
                cells.extend(drive(name, &url, &ids, &selection.driver_args, &[]));
                let sizes = sizes(&selection.driver_args);
                let with = |fault: &str| -> Vec<String> {
                    ["--fault".to_owned(), fault.to_owned()]
                        .into_iter()
                        .chain(sizes.iter().cloned())
                        .collect()
                };
                if *name == "redis" && selection.pause {
                    let extra = ["--no-completion-retries", "--expect-violations"];
                    cells.extend(drive(name, &url, &ids, &with("pause"), &extra));
                }
                // The SQL stores' transactional mode: under a kill no key
                // runs twice at all; with the claim split (the self-test),
                // the checker must see it.
                if TRANSACTIONAL.contains(name) && selection.kill {
                    cells.extend(drive(name, &url, &ids, &with("kill"), &["--transactional"]));
                    if *name == "mysql" {
                        let extra = ["--transactional", "--split-claim", "--expect-violations"];
                        cells.extend(drive(name, &url, &ids, &with("kill"), &extra));
                    }
                }
            }
            Err(reason) => cells.push(Cell {
                backend: (*name).to_owned(),
                fault: "all".into(),
                verdict: "skipped".into(),
                note: reason,
                ..blank()
            }),
        }
    }
    let (table, failed) = report(&cells);
    println!("{table}");
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("chaos: {failed} cell(s) failed"))
    }
}

/// The load arguments (`--keys`, `--apps`, `--copies`) among `args`.
fn sizes(args: &[String]) -> Vec<String> {
    args.chunks(2)
        .filter(|pair| pair[0] != "--fault" && pair[0] != "--backend")
        .flat_map(|pair| pair.iter().cloned())
        .collect()
}

fn blank() -> Cell {
    Cell {
        backend: String::new(),
        fault: String::new(),
        verdict: String::new(),
        keys: "-".into(),
        runs: "-".into(),
        twice: "-".into(),
        violations: "-".into(),
        note: String::new(),
    }
}

/// Runs the driver on one backend; its cells, or one error cell.
fn drive(backend: &str, url: &str, ids: &[String], args: &[String], extra: &[&str]) -> Vec<Cell> {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "-q",
        "-p",
        "idem-chaos",
        "--bin",
        "idem-chaos",
        "--",
        "run",
    ])
    .args(["--backend", backend]);
    if !url.is_empty() {
        cmd.args(["--store-url", url]);
    }
    for id in ids {
        cmd.args(["--container", id]);
    }
    let driver_args = args
        .chunks(2)
        .filter(|pair| pair[0] != "--backend")
        .flat_map(|pair| pair.iter().cloned());
    cmd.args(driver_args).args(extra);
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) => {
            return vec![Cell {
                backend: backend.into(),
                fault: "all".into(),
                verdict: "error".into(),
                note: format!("could not run the driver: {e}"),
                ..blank()
            }];
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The apps' and the driver's own words (violations, lost completions).
    for line in stderr.lines().filter(|l| !l.trim().is_empty()).take(40) {
        eprintln!("  {line}");
    }
    let cells: Vec<Cell> = stdout.lines().filter_map(parse_cell).collect();
    if cells.is_empty() || !output.status.success() {
        let mut cells = cells;
        cells.push(Cell {
            backend: backend.into(),
            fault: "all".into(),
            verdict: "error".into(),
            note: format!("the driver ended with {}", output.status),
            ..blank()
        });
        return cells;
    }
    cells
}

/// Reads `CELL backend fault verdict keys runs twice violations note`.
fn parse_cell(line: &str) -> Option<Cell> {
    let mut f = line.strip_prefix("CELL\t")?.splitn(8, '\t');
    let mut next = || f.next().unwrap_or("").to_owned();
    Some(Cell {
        backend: next(),
        fault: next(),
        verdict: next(),
        keys: next(),
        runs: next(),
        twice: next(),
        violations: next(),
        note: next(),
    })
}

/// The table and the number of failed cells.
fn report(cells: &[Cell]) -> (String, usize) {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\nchaos results (lease 3 s, 10 s for restart, cut and reset; pause = half the 3 s lease)"
    );
    let _ = writeln!(
        table,
        "{:<14} {:<32} {:>5} {:>5} {:>6} {:>10}  verdict",
        "backend", "fault", "keys", "runs", "twice", "violations"
    );
    let _ = writeln!(table, "{}", "-".repeat(96));
    let (mut passed, mut failed, mut na, mut skipped) = (0, 0, 0, 0);
    for c in cells {
        let shown = if c.verdict == "n/a" {
            "-"
        } else {
            c.keys.as_str()
        };
        let verdict = match c.verdict.as_str() {
            "pass" => {
                passed += 1;
                if SELF_TESTS.contains(&c.fault.as_str()) {
                    format!("pass (expected violations, got {})", c.violations)
                } else {
                    format!("pass ({})", c.note)
                }
            }
            "n/a" => {
                na += 1;
                format!("n/a: {}", c.note)
            }
            "skipped" => {
                skipped += 1;
                format!("SKIPPED: {}", c.note)
            }
            _ if SELF_TESTS.contains(&c.fault.as_str()) => {
                failed += 1;
                format!(
                    "FAILED: expected violations, got {} ({})",
                    c.violations, c.note
                )
            }
            other => {
                failed += 1;
                format!("FAILED ({other}): {}", c.note)
            }
        };
        let (runs, twice, violations) = if c.verdict == "n/a" {
            ("-", "-", "-")
        } else {
            (c.runs.as_str(), c.twice.as_str(), c.violations.as_str())
        };
        let _ = writeln!(
            table,
            "{:<14} {:<32} {:>5} {:>5} {:>6} {:>10}  {verdict}",
            c.backend, c.fault, shown, runs, twice, violations
        );
    }
    if skipped > 0 {
        // A backend without a server did not run: that fails the run.
        failed += skipped;
        let _ = writeln!(
            table,
            "\n*** {skipped} backend(s) SKIPPED: their faults did NOT run ***"
        );
    }
    let _ = writeln!(
        table,
        "\nchaos: {passed} passed, {failed} failed ({na} n/a)"
    );
    (table, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cell_lines() {
        let cell = parse_cell("CELL\tredis\tkill\tpass\t200\t203\t3\t0\t5.1 s").unwrap();
        assert_eq!(
            (cell.backend.as_str(), cell.fault.as_str()),
            ("redis", "kill")
        );
        assert_eq!((cell.runs.as_str(), cell.note.as_str()), ("203", "5.1 s"));
        assert_eq!(parse_cell("  redis x kill: k: no answer"), None);
    }

    #[test]
    fn n_a_is_never_a_pass_and_a_violation_fails() {
        let cell = |verdict: &str| Cell {
            backend: "sqlite".into(),
            fault: "restart".into(),
            verdict: verdict.into(),
            ..blank()
        };
        let (table, failed) = report(&[cell("n/a"), cell("pass"), cell("fail")]);
        assert_eq!(failed, 1);
        assert!(
            table.contains("chaos: 1 passed, 1 failed (1 n/a)"),
            "{table}"
        );
    }

    #[test]
    fn the_self_test_needs_violations() {
        let cell = Cell {
            backend: "redis".into(),
            fault: SELF_TESTS[0].into(),
            verdict: "fail".into(),
            violations: "0".into(),
            ..blank()
        };
        let (table, failed) = report(&[cell]);
        assert_eq!(failed, 1);
        assert!(table.contains("expected violations, got 0"), "{table}");
    }

    #[test]
    fn ci_runs_every_fault_and_self_test_on_its_backends() {
        let ci = Selection::for_ci();
        let mut backends = ci.backends.clone();
        backends.sort();
        let mut expected = CI_BACKENDS.to_vec();
        expected.sort();
        assert_eq!(backends, expected);
        assert!(ci.pause && ci.kill, "CI runs the self-tests");
        assert!(
            !ci.driver_args.iter().any(|a| a == "--fault"),
            "CI narrows no fault: {:?}",
            ci.driver_args
        );
    }

    #[test]
    fn arguments_are_checked() {
        assert!(Selection::parse(&["--backend".into(), "nope".into()]).is_err());
        let s = Selection::parse(&["--fault".into(), "kill".into()]).unwrap();
        assert!(!s.pause);
        assert_eq!(s.backends.len(), 5);
    }
}
