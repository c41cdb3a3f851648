//! The checker: pure code over the history, the clients' answers, and the
//! processes that were killed.
//!
//! For every key it asserts:
//! 1. every request sent with it got a final answer, a success;
//! 2. every success for it carries one body;
//! 3. its handler ran once, except a key whose run was cut by a kill, which
//!    ran at most twice (a run is cut by a kill when its process was killed
//!    and its answer never reached a client: it has no `end`, or it ended
//!    but the kill came before its result was stored and answered);
//! 4. every body a client got names a run that finished (has its `end`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::history::{Event, Step};

/// How one client request (all its retries) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The key it was sent with.
    pub key: String,
    /// The final status, or `None` when the deadline passed without one.
    pub status: Option<u16>,
    /// The final body (a run id on success), or what went wrong last.
    pub body: String,
}

impl Answer {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What the checker found for one cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Keys sent.
    pub keys: usize,
    /// Handler runs (`start` lines).
    pub runs: usize,
    /// Keys whose handler ran twice or more.
    pub twice: usize,
    /// Every broken rule, one line each (key and rule).
    pub violations: Vec<String>,
}

/// Checks `keys` against the history and the answers; `killed` names the
/// processes (`a<i>.<incarnation>`) that were killed with SIGKILL.
pub fn check(
    keys: &[String],
    history: &[Event],
    answers: &[Answer],
    killed: &HashSet<String>,
) -> Report {
    let mut starts: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    let mut ended: BTreeSet<&str> = BTreeSet::new();
    for event in history {
        match event.step {
            Step::Start => starts.entry(&event.key).or_default().push(event),
            Step::End => {
                ended.insert(&event.run);
            }
        }
    }
    let mut by_key: BTreeMap<&str, Vec<&Answer>> = BTreeMap::new();
    for answer in answers {
        by_key.entry(&answer.key).or_default().push(answer);
    }
    let mut report = Report {
        keys: keys.len(),
        runs: history.iter().filter(|e| e.step == Step::Start).count(),
        ..Report::default()
    };
    let sent: HashSet<&str> = keys.iter().map(String::as_str).collect();
    for key in starts.keys().filter(|k| !sent.contains(*k)) {
        report
            .violations
            .push(format!("{key}: ran, but no client sent it"));
    }
    for key in keys {
        let answers = by_key.get(key.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let runs = starts.get(key.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        check_key(key, runs, &ended, answers, killed, &mut report);
    }
    report
}

fn check_key(
    key: &str,
    runs: &[&Event],
    ended: &BTreeSet<&str>,
    answers: &[&Answer],
    killed: &HashSet<String>,
    report: &mut Report,
) {
    let violations = &mut report.violations;
    if answers.is_empty() {
        violations.push(format!("{key}: no answer recorded"));
    }
    for answer in answers.iter().filter(|a| !a.success()) {
        let status = answer
            .status
            .map_or_else(|| "none".to_owned(), |s| s.to_string());
        violations.push(format!(
            "{key}: no final success (status {status}: {})",
            answer.body.trim()
        ));
    }
    let bodies: BTreeSet<&str> = answers
        .iter()
        .filter(|a| a.success())
        .map(|a| a.body.as_str())
        .collect();
    if bodies.len() > 1 {
        violations.push(format!(
            "{key}: successes carry {} bodies: {bodies:?}",
            bodies.len()
        ));
    }
    for body in &bodies {
        if !ended.contains(body) {
            violations.push(format!(
                "{key}: a client got `{body}`, not a run that finished"
            ));
        }
    }
    let cut = runs
        .iter()
        .filter(|r| killed.contains(r.process()) && !bodies.contains(r.run.as_str()))
        .count();
    if runs.len() >= 2 {
        report.twice += 1;
    }
    let allowed = if cut > 0 { 2 } else { 1 };
    if runs.len() > allowed {
        let ids: Vec<&str> = runs.iter().map(|r| r.run.as_str()).collect();
        violations.push(format!(
            "{key}: the handler ran {} times ({cut} cut by a kill): {ids:?}",
            runs.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(key: &str, run: &str) -> Event {
        Event {
            step: Step::Start,
            key: key.into(),
            run: run.into(),
        }
    }

    fn end(key: &str, run: &str) -> Event {
        Event {
            step: Step::End,
            ..start(key, run)
        }
    }

    fn ok(key: &str, body: &str) -> Answer {
        Answer {
            key: key.into(),
            status: Some(201),
            body: body.into(),
        }
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn none() -> HashSet<String> {
        HashSet::new()
    }

    #[test]
    fn one_run_replayed_to_every_client_passes() {
        let history = [start("k", "a0.0-1"), end("k", "a0.0-1")];
        let answers = [ok("k", "a0.0-1"), ok("k", "a0.0-1")];
        let report = check(&keys(&["k"]), &history, &answers, &none());
        assert_eq!(report.violations, Vec::<String>::new());
        assert_eq!((report.keys, report.runs, report.twice), (1, 1, 0));
    }

    #[test]
    fn a_key_without_a_final_success_is_a_violation() {
        let history = [start("k", "a0.0-1"), end("k", "a0.0-1")];
        let timed_out = Answer {
            key: "k".into(),
            status: None,
            body: "deadline".into(),
        };
        let report = check(
            &keys(&["k"]),
            &history,
            &[ok("k", "a0.0-1"), timed_out],
            &none(),
        );
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        let report = check(&keys(&["k"]), &history, &[], &none());
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        let server_error = Answer {
            status: Some(500),
            ..ok("k", "boom")
        };
        let report = check(&keys(&["k"]), &history, &[server_error], &none());
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    }

    #[test]
    fn two_bodies_for_one_key_are_a_violation() {
        let history = [
            start("k", "a0.0-1"),
            end("k", "a0.0-1"),
            start("k", "a1.0-1"),
            end("k", "a1.0-1"),
        ];
        let answers = [ok("k", "a0.0-1"), ok("k", "a1.0-1")];
        let report = check(&keys(&["k"]), &history, &answers, &none());
        // Two bodies, and two runs with no kill.
        assert_eq!(report.violations.len(), 2, "{:?}", report.violations);
        assert_eq!(report.twice, 1);
    }

    #[test]
    fn a_second_run_without_a_kill_is_a_violation() {
        let history = [
            start("k", "a0.0-1"),
            end("k", "a0.0-1"),
            start("k", "a1.0-1"),
            end("k", "a1.0-1"),
        ];
        let answers = [ok("k", "a1.0-1")];
        let report = check(&keys(&["k"]), &history, &answers, &none());
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    }

    #[test]
    fn a_run_cut_by_a_kill_allows_one_more_but_not_two() {
        let mut history = vec![
            start("k", "a0.0-1"),
            start("k", "a1.0-1"),
            end("k", "a1.0-1"),
        ];
        let killed = HashSet::from(["a0.0".to_owned()]);
        let answers = [ok("k", "a1.0-1")];
        let report = check(&keys(&["k"]), &history, &answers, &killed);
        assert_eq!(report.violations, Vec::<String>::new());
        assert_eq!(report.twice, 1);
        // Cut, but the process was not killed: not allowed.
        let report = check(&keys(&["k"]), &history, &answers, &none());
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        // Ended, but killed before its answer left: cut too.
        let ended = [
            start("k", "a0.0-1"),
            end("k", "a0.0-1"),
            start("k", "a1.0-1"),
            end("k", "a1.0-1"),
        ];
        let report = check(&keys(&["k"]), &ended, &answers, &killed);
        assert_eq!(report.violations, Vec::<String>::new());
        // Killed after its answer reached a client: not cut.
        let answered = [ok("k", "a0.0-1"), ok("k", "a1.0-1")];
        let report = check(&keys(&["k"]), &ended, &answered, &killed);
        assert_eq!(report.violations.len(), 2, "{:?}", report.violations);
        // A third run is too many, kill or not.
        history.extend([start("k", "a2.0-1"), end("k", "a2.0-1")]);
        let report = check(&keys(&["k"]), &history, &answers, &killed);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    }

    #[test]
    fn a_body_from_a_run_that_never_finished_is_a_violation() {
        let history = [start("k", "a0.0-1")];
        let killed = HashSet::from(["a0.0".to_owned()]);
        let report = check(&keys(&["k"]), &history, &[ok("k", "a0.0-1")], &killed);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        let report = check(&keys(&["k"]), &[], &[ok("k", "made-up")], &none());
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    }

    #[test]
    fn a_run_for_a_key_nobody_sent_is_a_violation() {
        let history = [
            start("k", "a0.0-1"),
            end("k", "a0.0-1"),
            start("x", "a0.0-2"),
            end("x", "a0.0-2"),
        ];
        let report = check(&keys(&["k"]), &history, &[ok("k", "a0.0-1")], &none());
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    }
}
