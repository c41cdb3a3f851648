//! `cargo xtask bench`: the idempotency layer's load benchmark (not part of CI).
//!
//! Builds `idem-tower`'s `bench_server` example in release, starts it on
//! 127.0.0.1 (ephemeral port) pinned to CPU 0, and drives it with `wrk` pinned
//! to CPU 1, one scenario after the other in one run: the bare handler, the
//! layer with a fresh key per request, and replays of one key, all on the
//! memory store. Prints requests/s, p50 and p99 for each and the ratios to the
//! bare handler against the targets of issue 7. A fourth, diagnostic row
//! (`fresh-ref`) runs the same layer on a `Mutex<HashMap>` store, to tell the
//! layer's cost from the memory store's; the targets are judged without it.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{cargo, project_root, run_step};

/// Sets a fresh `Idempotency-Key` per request (unique per wrk thread and run),
/// or one constant key for replays. Every scenario sends the same request shape.
const SCRIPT: &str = r#"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"amount":"99.99","currency":"EUR","recipient":"alice@example.com"}'
local mode = os.getenv("IDEM_BENCH_MODE") or "fresh"
local run = os.getenv("IDEM_BENCH_RUN") or "0"
local n = 0
local prefix = run .. "-" .. tostring(math.random(1, 2000000000)) .. "-"
function request()
  n = n + 1
  if mode == "replay" then
    wrk.headers["Idempotency-Key"] = "bench-replay-key"
  else
    wrk.headers["Idempotency-Key"] = prefix .. n
  end
  return wrk.format()
end
"#;

struct Options {
    duration: u32,
    warmup: u32,
    rounds: u32,
    /// Run server and wrk at a raised scheduling priority (`nice -n -10`), so
    /// other work on the machine disturbs the figures less.
    priority: bool,
    connections: u32,
    runtime: String,
}

struct Figures {
    rps: f64,
    requests: u64,
    /// Server CPU time (user + system) per request, in microseconds.
    cpu_us: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    errors: String,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    for tool in ["wrk", "taskset"] {
        if Command::new(tool).arg("-h").output().is_err() {
            return Err(format!(
                "`{tool}` not found: install it (Debian: `apt-get install -y wrk util-linux`)"
            ));
        }
    }
    run_step(
        "cargo build --release -p idem-tower --example bench_server",
        cargo().args([
            "build",
            "--release",
            "-p",
            "idem-tower",
            "--example",
            "bench_server",
        ]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    let server_bin = target.join("release/examples/bench_server");

    let pinned = |cpu: &str| {
        let mut cmd = if opts.priority {
            let mut nice = Command::new("nice");
            nice.args(["-n", "-10", "taskset"]);
            nice
        } else {
            Command::new("taskset")
        };
        cmd.args(["-c", cpu]);
        cmd
    };
    let mut server = pinned("0")
        .arg(&server_bin)
        .env("IDEM_BENCH_RUNTIME", &opts.runtime)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", server_bin.display()))?;
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    let url = match lines.next() {
        Some(Ok(line)) if line.starts_with("listening ") => line["listening ".len()..].to_owned(),
        other => {
            let _ = server.kill();
            return Err(format!("bench_server did not start: {other:?}"));
        }
    };
    let script = std::env::temp_dir().join(format!("idem-bench-{}.lua", std::process::id()));
    std::fs::write(&script, SCRIPT).map_err(|e| format!("writing {}: {e}", script.display()))?;

    eprintln!(
        "\n==> server {url} on CPU 0 ({} runtime, 1 thread); wrk on CPU 1, 1 thread, {} connections, \
         {} s warm-up + {} s per scenario, {} round(s){}",
        opts.runtime,
        opts.connections,
        opts.warmup,
        opts.duration,
        opts.rounds,
        if opts.priority { ", nice -10" } else { "" }
    );
    let mut results = Vec::new();
    let mut failure = None;
    let runs = (0..opts.rounds).flat_map(|round| {
        SCENARIOS
            .iter()
            .enumerate()
            .map(move |(i, s)| (round, i, *s))
    });
    for (round, i, scenario) in runs {
        let wrk = |secs: u32, run: String| {
            pinned("1")
                .args(["wrk", "-t1", "--latency"])
                .arg(format!("-c{}", opts.connections))
                .arg(format!("-d{secs}s"))
                .arg("-s")
                .arg(&script)
                .arg(format!("{url}/{scenario}"))
                .env("IDEM_BENCH_MODE", scenario)
                .env("IDEM_BENCH_RUN", run)
                .output()
        };
        if opts.warmup > 0 && round == 0 {
            let _ = wrk(opts.warmup, format!("warm{i}"));
        }
        let cpu_before = cpu_ticks(server.id());
        let out = wrk(opts.duration, format!("run{round}-{i}")).map_err(|e| format!("wrk: {e}"))?;
        let cpu_after = cpu_ticks(server.id());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        match parse_wrk(&text) {
            Some(mut f) => {
                if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
                    // Linux reports CPU time in ticks of 1/100 s.
                    f.cpu_us = Some((b - a) as f64 * 10_000.0 / f.requests.max(1) as f64);
                }
                if f.non_2xx > 0 {
                    failure = Some(format!("{scenario}: {} answers were not 2xx", f.non_2xx));
                }
                results.push((scenario, f));
            }
            None => {
                failure = Some(format!("{scenario}: could not read wrk's output:\n{text}"));
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&script);
    drop(server.stdin.take()); // the server prints its counters and exits
    for line in lines.map_while(Result::ok) {
        if line.starts_with("metrics") {
            eprintln!("server {line}");
        }
    }
    let _ = server.wait();
    if let Some(failure) = failure {
        return Err(failure);
    }
    report(&results, opts.rounds);
    Ok(())
}

/// The scenarios, in the order they run in each round.
const SCENARIOS: [&str; 4] = ["bare", "fresh", "replay", "fresh-ref"];

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

fn report(all: &[(&str, Figures)], rounds: u32) {
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

fn parse(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        duration: 10,
        warmup: 2,
        connections: 32,
        rounds: 1,
        priority: false,
        runtime: "multi".into(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))
                .cloned()
        };
        let number = |v: String, name: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("{name}: not a number: {v}"))
        };
        match arg.as_str() {
            "--duration" => opts.duration = number(value(arg)?, arg)?.max(1),
            "--warmup" => opts.warmup = number(value(arg)?, arg)?,
            "--connections" => opts.connections = number(value(arg)?, arg)?.max(1),
            "--rounds" => opts.rounds = number(value(arg)?, arg)?.max(1),
            "--priority" => opts.priority = true,
            "--runtime" => {
                opts.runtime = value(arg)?;
                if !matches!(opts.runtime.as_str(), "multi" | "current") {
                    return Err("--runtime is `multi` or `current`".into());
                }
            }
            other => return Err(format!("bench: unknown argument `{other}`")),
        }
    }
    Ok(opts)
}

/// Reads requests/s, the 50% and 99% latencies, non-2xx count and socket
/// errors from `wrk --latency` output.
fn parse_wrk(text: &str) -> Option<Figures> {
    let mut rps = None;
    let mut requests = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_2xx = 0;
    let mut errors = String::from("0");
    for line in text.lines() {
        let line = line.trim();
        if line.contains(" requests in ") {
            requests = line.split_whitespace().next().and_then(|n| n.parse().ok());
        }
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = latency_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = latency_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap_or(u64::MAX);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            errors = v.trim().to_owned();
        }
    }
    Some(Figures {
        rps: rps?,
        requests: requests.unwrap_or(0),
        cpu_us: None,
        p50_ms: p50?,
        p99_ms: p99?,
        non_2xx,
        errors,
    })
}

/// The CPU time (user + system) `pid` has used, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `812.00us`, `3.69ms`, `1.02s`, `1.50m` in milliseconds.
fn latency_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => num / 1000.0,
        "ms" => num,
        "s" => num * 1000.0,
        "m" => num * 60_000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let text = "  32000 requests in 10.00s, 5.1MB read\n  Latency Distribution\n     50%  812.00us\n     75%    1.20ms\n     99%   39.92ms\n\
                    Requests/sec:   9380.23\n";
        let f = parse_wrk(text).unwrap();
        assert_eq!(f.rps, 9380.23);
        assert!((f.p50_ms - 0.812).abs() < 1e-9);
        assert_eq!(f.p99_ms, 39.92);
        assert_eq!(f.non_2xx, 0);
        assert_eq!(f.requests, 32000);
        assert!(cpu_ticks(std::process::id()).is_some());
    }
}
