//! `cargo xtask conformance`: the suite on every backend, and a table.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::backends::{BACKENDS, Backend, Server};
use crate::servers::{Kind, Servers};
use crate::util::cargo;

/// How one backend's run ended.
#[derive(Debug)]
pub(crate) enum Verdict {
    Ran {
        source: String,
        passed: u32,
        failed: u32,
        ignored: u32,
        failures: Vec<String>,
    },
    Skipped {
        reason: String,
    },
    Broken {
        source: String,
        reason: String,
    },
}

/// `cargo xtask conformance`: starts the servers the selected backends
/// need, runs them, and removes the servers.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let selection = Selection::parse(args)?;
    let servers = Servers::start(&needed_kinds(&selection.backends));
    run_with(&selection, &servers)
}

/// The backends to run, and those that must not be skipped.
pub(crate) struct Selection {
    backends: Vec<&'static Backend>,
    required: BTreeSet<String>,
}

/// The server kinds `backends` need, once each.
pub(crate) fn needed_kinds(backends: &[&Backend]) -> Vec<Kind> {
    let kinds: BTreeSet<Kind> = backends
        .iter()
        .filter_map(|b| match b.server {
            Server::External(kind) => Some(kind),
            Server::Embedded => None,
        })
        .collect();
    kinds.into_iter().collect()
}

impl Selection {
    /// Every backend; those in `IDEM_REQUIRE` are required.
    pub(crate) fn all() -> Result<Self, String> {
        Self::parse(&[])
    }

    fn parse(args: &[String]) -> Result<Self, String> {
        let mut only = BTreeSet::new();
        let mut required = required_from_env();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .ok_or(format!("{arg} needs a backend name"))
            };
            match arg.as_str() {
                "--backend" => {
                    only.insert(value()?);
                }
                "--require" => {
                    required.insert(value()?);
                }
                other => {
                    return Err(format!(
                        "unknown argument `{other}` (see cargo xtask --help)"
                    ));
                }
            }
        }
        if required.remove("all") {
            required.extend(BACKENDS.iter().map(|b| b.name.to_owned()));
        }
        for name in only.iter().chain(&required) {
            if !BACKENDS.iter().any(|b| b.name == name) {
                let known: Vec<_> = BACKENDS.iter().map(|b| b.name).collect();
                return Err(format!(
                    "no backend named `{name}`; known: {}",
                    known.join(", ")
                ));
            }
        }
        let left_out = required
            .iter()
            .find(|name| !only.is_empty() && !only.contains(*name));
        if let Some(left_out) = left_out {
            return Err(format!(
                "`{left_out}` is required (--require or IDEM_REQUIRE) but not selected by --backend"
            ));
        }
        let backends = BACKENDS
            .iter()
            .filter(|b| only.is_empty() || only.contains(b.name))
            .collect();
        Ok(Self { backends, required })
    }

    /// The backends selected.
    pub(crate) fn backends(&self) -> &[&'static Backend] {
        &self.backends
    }
}

/// Runs the selected backends against `servers` and prints the table.
pub(crate) fn run_with(selection: &Selection, servers: &Servers) -> Result<(), String> {
    let mut results = Vec::new();
    for backend in &selection.backends {
        eprintln!("\n==> conformance: {}", backend.name);
        let verdict = match source(backend, servers) {
            Ok(source) => run_backend(backend, source, servers),
            Err(reason) => Verdict::Skipped { reason },
        };
        results.push((backend.name, verdict));
    }

    let (table, problems) = report(&results, &selection.required);
    println!("{table}");
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("conformance failed:\n  {}", problems.join("\n  ")))
    }
}

fn required_from_env() -> BTreeSet<String> {
    std::env::var("IDEM_REQUIRE")
        .unwrap_or_default()
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Where the backend's server comes from, or why there is none.
fn source(backend: &Backend, servers: &Servers) -> Result<String, String> {
    match backend.server {
        Server::Embedded => Ok("embedded".into()),
        Server::External(kind) => servers.source(kind),
    }
}

fn run_backend(backend: &Backend, source: String, servers: &Servers) -> Verdict {
    // The backend is required inside its own run: a harness that cannot reach
    // the server fails its cases instead of skipping them.
    let mut require = std::env::var("IDEM_REQUIRE").unwrap_or_default();
    require.push(',');
    require.push_str(backend.name);
    // One test binary; this backend's tests are those under its module.
    let filter = format!("suite::{}::", backend.module);
    let output = cargo()
        .args([
            "test",
            "-p",
            "idem-tests",
            "--test",
            "conformance",
            "--",
            &filter,
            "--color",
            "never",
        ])
        .envs(servers.env())
        .env("IDEM_REQUIRE", require)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            return Verdict::Broken {
                source,
                reason: format!("could not run cargo: {e}"),
            };
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let Some((passed, failed, ignored)) = stdout.lines().rev().find_map(parse_result) else {
        eprintln!("{stderr}\n{stdout}");
        return Verdict::Broken {
            source,
            reason: "the test binary did not build or run (output above)".into(),
        };
    };
    let failures: Vec<String> = stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix("test ")?
                .strip_suffix(" ... FAILED")
                .map(str::to_owned)
        })
        .collect();
    if failed > 0 || !output.status.success() {
        eprintln!("{stdout}");
    }
    Verdict::Ran {
        source,
        passed,
        failed,
        ignored,
        failures,
    }
}

/// Reads libtest's `test result: ok. 36 passed; 0 failed; 0 ignored; ...`.
fn parse_result(line: &str) -> Option<(u32, u32, u32)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| -> Option<u32> {
        rest.split(';')
            .find_map(|part| {
                part.trim()
                    .trim_start_matches("ok. ")
                    .trim_start_matches("FAILED. ")
                    .strip_suffix(word)
            })
            .and_then(|n| n.trim().parse().ok())
    };
    Some((count(" passed")?, count(" failed")?, count(" ignored")?))
}

fn report(results: &[(&str, Verdict)], required: &BTreeSet<String>) -> (String, Vec<String>) {
    let mut table = String::new();
    let mut problems = Vec::new();
    let _ = writeln!(table, "\nconformance results");
    let _ = writeln!(
        table,
        "{:<22} {:<44} {:>6} {:>6} {:>7}  note",
        "backend", "server", "passed", "failed", "skipped"
    );
    let _ = writeln!(table, "{}", "-".repeat(106));
    for (name, verdict) in results {
        let must = required.contains(*name);
        match verdict {
            Verdict::Ran {
                source,
                passed,
                failed,
                ignored,
                failures,
            } => {
                let note = if *failed > 0 {
                    format!("FAILED: {}", failures.join(", "))
                } else {
                    "ok".into()
                };
                let _ = writeln!(
                    table,
                    "{name:<22} {source:<44} {passed:>6} {failed:>6} {ignored:>7}  {note}"
                );
                if *failed > 0 {
                    problems.push(format!(
                        "{name}: {failed} case(s) failed: {}",
                        failures.join(", ")
                    ));
                }
                if *passed == 0 && *failed == 0 {
                    problems.push(format!("{name}: no case ran"));
                }
            }
            Verdict::Skipped { reason } => {
                let tag = if must {
                    "SKIPPED (REQUIRED)"
                } else {
                    "SKIPPED"
                };
                let _ = writeln!(
                    table,
                    "{name:<22} {:<44} {:>6} {:>6} {:>7}  {tag}: {reason}",
                    "-", "-", "-", "all"
                );
                if must {
                    problems.push(format!("{name} is required but was skipped: {reason}"));
                }
            }
            Verdict::Broken { source, reason } => {
                let _ = writeln!(
                    table,
                    "{name:<22} {source:<44} {:>6} {:>6} {:>7}  ERROR: {reason}",
                    "-", "-", "-"
                );
                problems.push(format!("{name}: {reason}"));
            }
        }
    }
    let (mut passed, mut failed, mut skipped_cases) = (0, 0, 0);
    for (_, verdict) in results {
        match verdict {
            Verdict::Ran {
                passed: p,
                failed: f,
                ignored,
                ..
            } => {
                passed += p;
                failed += f;
                skipped_cases += ignored;
            }
            Verdict::Skipped { .. } => skipped_cases += 1,
            Verdict::Broken { .. } => failed += 1,
        }
    }
    let skipped: Vec<_> = results
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Skipped { .. }))
        .map(|(n, _)| *n)
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            table,
            "\n*** {} backend(s) SKIPPED, their cases did NOT run: {} ***",
            skipped.len(),
            skipped.join(", ")
        );
    }
    // The plain closing line CI reads: skipped counts skipped backends (a
    // whole backend is one skip) plus ignored cases.
    let _ = writeln!(
        table,
        "\nconformance: {passed} passed, {failed} failed, {skipped_cases} skipped"
    );
    (table, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libtest_summaries() {
        assert_eq!(
            parse_result(
                "test result: ok. 36 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 2.49s"
            ),
            Some((36, 0, 2))
        );
        assert_eq!(
            parse_result(
                "test result: FAILED. 30 passed; 6 failed; 0 ignored; 0 measured; 0 filtered out"
            ),
            Some((30, 6, 0))
        );
        assert_eq!(parse_result("running 36 tests"), None);
    }

    #[test]
    fn a_skipped_required_backend_is_a_problem() {
        let results = [(
            "redis",
            Verdict::Skipped {
                reason: "no server".into(),
            },
        )];
        let (_, problems) = report(&results, &BTreeSet::from(["redis".to_owned()]));
        assert_eq!(problems.len(), 1);
        let (table, problems) = report(&results, &BTreeSet::new());
        assert!(problems.is_empty());
        assert!(table.contains("SKIPPED"));
    }

    #[test]
    fn a_failed_case_is_a_problem() {
        let results = [(
            "memory",
            Verdict::Ran {
                source: "embedded".into(),
                passed: 35,
                failed: 1,
                ignored: 0,
                failures: vec!["x".into()],
            },
        )];
        let (_, problems) = report(&results, &BTreeSet::new());
        assert_eq!(problems.len(), 1);
    }
}
