//! The benchmark's report: the median of each figure over the rounds, and
//! the ratios to the bare handler against the targets.

use std::io::Write;

use super::{Figures, Run, SCENARIOS};

/// The median of each figure over the rounds, per scenario.
fn medians(all: &[(&str, Figures)]) -> Vec<(&'static str, Figures)> {
    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    SCENARIOS
        .iter()
        .filter_map(|&name| {
            let runs: Vec<&Figures> = all
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, f)| f)
                .collect();
            if runs.is_empty() {
                return None;
            }
            let pick = |f: fn(&Figures) -> f64| median(runs.iter().map(|r| f(r)).collect());
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
                },
            ))
        })
        .collect()
}

/// Prints the figures: requests/s per round (when there are several rounds),
/// the medians, and the ratios to the bare handler against the targets.
pub(super) fn print(all: &[(&str, Figures)], rounds: u32) {
    let mut out = std::io::stdout().lock();
    if rounds > 1 {
        let _ = writeln!(out, "\nrequests/s per round:");
        for name in SCENARIOS {
            let per_round: Vec<String> = all
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, f)| format!("{:.0}", f.rps))
                .collect();
            let _ = writeln!(out, "  {name:<9} {}", per_round.join("  "));
        }
    }
    let results = medians(all);
    let results = results.as_slice();
    if rounds > 1 {
        let _ = write!(out, "\nmedians over {rounds} rounds:");
    }
    let _ = writeln!(
        out,
        "\n{:<9} {:>11} {:>9} {:>9} {:>16} {:>7}",
        "scenario", "requests/s", "p50 ms", "p99 ms", "server CPU µs/req", "errors"
    );
    for (name, f) in results {
        let cpu = f.cpu_us.map_or("-".into(), |c| format!("{c:.1}"));
        let _ = writeln!(
            out,
            "{name:<9} {:>11.0} {:>9.3} {:>9.3} {cpu:>16} {:>7}",
            f.rps, f.p50_ms, f.p99_ms, f.errors
        );
    }
    let get = |n: &str| results.iter().find(|(name, _)| *name == n).map(|(_, f)| f);
    if let (Some(bare), Some(fresh), Some(replay)) = (get("bare"), get("fresh"), get("replay")) {
        let check = |ok: bool| if ok { "met" } else { "MISSED" };
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
