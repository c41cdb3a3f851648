//! The benchmark's report: the median of each figure over the rounds, and
//! the ratios to the bare handler against the targets.

use std::io::Write;

use super::baseline::RedisBound;
use super::{Figures, Run};

/// The median of `v` (the upper one of an even count); 0 when empty.
pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The scenarios of `all`, in the order they first ran.
fn names(all: &[(&'static str, Figures)]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for (name, _) in all {
        if !names.contains(name) {
            names.push(name);
        }
    }
    names
}

/// The median of each figure over the rounds, per scenario.
fn medians(all: &[(&'static str, Figures)]) -> Vec<(&'static str, Figures)> {
    names(all)
        .into_iter()
        .filter_map(|name| {
            let runs: Vec<&Figures> = all
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, f)| f)
                .collect();
            if runs.is_empty() {
                return None;
            }
            let pick = |f: fn(&Figures) -> f64| median(runs.iter().map(|r| f(r)).collect());
            let some = |f: fn(&Figures) -> Option<f64>| {
                let v: Vec<f64> = runs.iter().filter_map(|r| f(r)).collect();
                (!v.is_empty()).then(|| median(v))
            };
            let cpu: Vec<f64> = runs.iter().filter_map(|r| r.cpu_us).collect();
            Some((
                name,
                Figures {
                    rps: pick(|f| f.rps),
                    requests: runs.iter().map(|r| r.requests).sum(),
                    cpu_us: (!cpu.is_empty()).then(|| median(cpu)),
                    p50_ms: pick(|f| f.p50_ms),
                    p99_ms: pick(|f| f.p99_ms),
                    non_2xx: runs.iter().map(|r| r.non_2xx).sum(),
                    errors: runs
                        .iter()
                        .map(|r| r.errors.as_str())
                        .collect::<Vec<_>>()
                        .join("/"),
                    store_ops: some(|f| f.store_ops),
                    store_cpu_us: some(|f| f.store_cpu_us),
                },
            ))
        })
        .collect()
}

/// The medians of scenario `name`.
fn get<'a>(results: &'a [(&str, Figures)], name: &str) -> Option<&'a Figures> {
    results.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
}

/// Prints requests/s per round (when there are several rounds) and a table
/// of the medians, with the store's columns when the run had a store;
/// returns the medians.
fn table(all: &[(&'static str, Figures)], rounds: u32) -> Vec<(&'static str, Figures)> {
    let mut out = std::io::stdout().lock();
    let names = names(all);
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0).max(9);
    if rounds > 1 {
        let _ = writeln!(out, "\nrequests/s per round:");
        for name in &names {
            let per_round: Vec<String> = all
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, f)| format!("{:.0}", f.rps))
                .collect();
            let _ = writeln!(out, "  {name:<width$} {}", per_round.join("  "));
        }
    }
    let results = medians(all);
    if rounds > 1 {
        let _ = write!(out, "\nmedians over {rounds} rounds:");
    }
    let store = results.iter().any(|(_, f)| f.store_ops.is_some());
    let _ = write!(
        out,
        "\n{:<width$} {:>11} {:>9} {:>9} {:>16} {:>7}",
        "scenario", "requests/s", "p50 ms", "p99 ms", "server CPU µs/req", "errors"
    );
    let _ = if store {
        writeln!(out, " {:>16} {:>13}", "store CPU µs/req", "store ops/req")
    } else {
        writeln!(out)
    };
    let figure = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    for (name, f) in &results {
        let _ = write!(
            out,
            "{name:<width$} {:>11.0} {:>9.3} {:>9.3} {:>16} {:>7}",
            f.rps,
            f.p50_ms,
            f.p99_ms,
            figure(f.cpu_us, 1),
            f.errors
        );
        let _ = if store {
            writeln!(
                out,
                " {:>16} {:>13}",
                figure(f.store_cpu_us, 1),
                figure(f.store_ops, 2)
            )
        } else {
            writeln!(out)
        };
    }
    results
}

/// `met` or `MISSED`.
fn check(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Store operations per request of each scenario, `fresh 2.00, replay 1.00, ...`.
fn ops_per_request(results: &[(&str, Figures)]) -> String {
    results
        .iter()
        .filter_map(|(n, f)| Some(format!("{n} {:.2}", f.store_ops?)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the Redis run (`title` first) and its bound: fresh keys against
/// 0.8 x (redis-benchmark's SET requests/s / 2), replays through the
/// memory tier against the bare handler.
pub(super) fn redis(title: &str, run: &Run, rounds: u32, bound: RedisBound) {
    println!("\n{title}");
    let results = table(&run.results, rounds);
    let get = |n: &str| get(&results, n);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "redis-benchmark, same server: SET {:.0} requests/s, GET {:.0} requests/s",
        bound.set_rps, bound.get_rps
    );
    if let Some(fresh) = get("fresh") {
        let floor = bound.set_rps / 2.0;
        let ratio = fresh.rps / floor;
        let _ = writeln!(
            out,
            "fresh {:.0} requests/s = {ratio:.2}x (SET/2 = {floor:.0})  (target >= 0.80x: {})",
            fresh.rps,
            check(ratio >= 0.8)
        );
    }
    if let (Some(bare), Some(tier)) = (get("bare"), get("replay-tier")) {
        let ratio = tier.rps / bare.rps;
        let _ = writeln!(
            out,
            "replay-tier/bare {ratio:.2}x  (target >= 0.95x: {})",
            check(ratio >= 0.95)
        );
    }
    if let (Some(bare), Some(replay)) = (get("bare"), get("replay")) {
        let _ = writeln!(
            out,
            "diagnostic, not a target: replay/bare {:.2}x, replay/GET {:.2}x (no tier: one round trip each)",
            replay.rps / bare.rps,
            replay.rps / bound.get_rps
        );
    }
    let _ = writeln!(
        out,
        "Redis commands per request (INFO total_commands_processed, which counts the commands \
         a script runs too, so not round trips): {}",
        ops_per_request(&results)
    );
}

/// Prints the PostgreSQL run (`title` first) against pgbench's one-row
/// upsert (`tps`, from `pgbench_line`), and the statements per request
/// against the targets (two per fresh request, one per replay); returns
/// whether those were met.
pub(super) fn postgres(title: &str, run: &Run, rounds: u32, pgbench_line: &str, tps: f64) -> bool {
    println!("\n{title}");
    let results = table(&run.results, rounds);
    let get = |n: &str| get(&results, n);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{pgbench_line}, same server: {tps:.0} tps");
    if let Some(fresh) = get("fresh") {
        let _ = writeln!(
            out,
            "fresh {:.0} requests/s = {:.2}x pgbench tps; a fresh request is two statements: \
             {:.2}x tps/2",
            fresh.rps,
            fresh.rps / tps,
            fresh.rps / (tps / 2.0)
        );
    }
    if let (Some(bare), Some(replay), Some(tier)) = (get("bare"), get("replay"), get("replay-tier"))
    {
        let _ = writeln!(
            out,
            "replay/bare {:.2}x, replay-tier/bare {:.2}x",
            replay.rps / bare.rps,
            tier.rps / bare.rps
        );
    }
    let ops = |n: &str| get(n).and_then(|f| f.store_ops);
    let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 0.05);
    let (fresh_ok, replay_ok) = (near(ops("fresh"), 2.0), near(ops("replay"), 1.0));
    let _ = writeln!(
        out,
        "statements per request (pg_stat_statements calls in idem's database): {}\n\
         fresh: 2 (target: {}), replay: 1 (target: {})",
        ops_per_request(&results),
        check(fresh_ok),
        check(replay_ok)
    );
    fresh_ok && replay_ok
}

/// Prints the figures: requests/s per round (when there are several rounds),
/// the medians, and the ratios to the bare handler against the targets.
pub(super) fn print(all: &[(&'static str, Figures)], rounds: u32) {
    let results = table(all, rounds);
    let results = results.as_slice();
    let mut out = std::io::stdout().lock();
    let get = |n: &str| get(results, n);
    if let (Some(bare), Some(fresh), Some(replay)) = (get("bare"), get("fresh"), get("replay")) {
        let fresh_ratio = fresh.rps / bare.rps;
        let replay_ratio = replay.rps / bare.rps;
        let p99_ratio = fresh.p99_ms / bare.p99_ms;
        let _ = writeln!(
            out,
            "\nfresh/bare  {fresh_ratio:.2}x  (target >= 0.90x: {})",
            check(fresh_ratio >= 0.9)
        );
        let _ = writeln!(
            out,
            "replay/bare {replay_ratio:.2}x  (target >= 1.00x: {})",
            check(replay_ratio >= 1.0)
        );
        let _ = writeln!(
            out,
            "p99 fresh / p99 bare {p99_ratio:.2}x  (target <= 2.00x: {})",
            check(p99_ratio <= 2.0)
        );
        if let (Some(b), Some(f), Some(r)) = (bare.cpu_us, fresh.cpu_us, replay.cpu_us) {
            let _ = writeln!(
                out,
                "server CPU per request: fresh/bare {:.2}x, replay/bare {:.2}x \
                 (capacity when the server, not the load generator, is the limit)",
                f / b,
                r / b
            );
        }
        if let Some(reference) = get("fresh-ref") {
            let _ = writeln!(
                out,
                "diagnostic, not a target: fresh-ref/bare {:.2}x, p99 {:.2}x \
                 (the layer on a Mutex<HashMap> store instead of idem-memory)",
                reference.rps / bare.rps,
                reference.p99_ms / bare.p99_ms
            );
        }
    }
}

/// Prints one row per server, each measured in this run: the ratios of
/// fresh keys and replays to its own bare handler, the p99s, and its
/// resident memory at the end.
pub(super) fn side_by_side(runs: &[(&str, &Run)]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n{:<28} {:>10} {:>11} {:>12} {:>13} {:>12} {:>10}",
        "server", "bare rps", "fresh/bare", "replay/bare", "fresh p99 ms", "bare p99 ms", "RSS MiB"
    );
    for (name, run) in runs {
        let results = medians(&run.results);
        let get = |n: &str| results.iter().find(|(s, _)| *s == n).map(|(_, f)| f);
        let (Some(bare), Some(fresh), Some(replay)) = (get("bare"), get("fresh"), get("replay"))
        else {
            let _ = writeln!(out, "{name:<28} (a scenario is missing)");
            continue;
        };
        let rss = run
            .rss_kib
            .map_or("-".into(), |kib| format!("{:.0}", kib as f64 / 1024.0));
        let _ = writeln!(
            out,
            "{name:<28} {:>10.0} {:>10.2}x {:>11.2}x {:>13.3} {:>12.3} {rss:>10}",
            bare.rps,
            fresh.rps / bare.rps,
            replay.rps / bare.rps,
            fresh.p99_ms,
            bare.p99_ms,
        );
    }
}
