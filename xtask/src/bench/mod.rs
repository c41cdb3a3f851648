//! `cargo xtask bench`: the idempotency layer's load benchmark (not part of CI).
//!
//! Builds `idem-tower`'s `bench_server` example in release, starts it on
//! 127.0.0.1 (ephemeral port) pinned to CPU 0, and drives it with `wrk` pinned
//! to CPU 1, one scenario after the other in one run: the bare handler, the
//! layer with a fresh key per request, and replays of one key, all on the
//! memory store. Prints requests/s, p50 and p99 for each and the ratios to the
//! bare handler against the layer's targets (fresh keys at least 0.90x the
//! bare requests/s, replays at least 1.00x, fresh p99 at most 2x the bare p99).
//! A fourth, diagnostic row (`fresh-ref`) runs the same layer on a
//! `Mutex<HashMap>` store, to tell the layer's cost from the memory store's;
//! the targets are judged without it, and its rounds run after all the
//! others' (that store is unbounded, and would swell the resident memory).
//!
//! With `--peers`, the same scenarios (bare, fresh, replay) then run
//! against a peer server: the same handler behind the `idempotent` crate on
//! its memory store, built by [`peer`] in a workspace of its own, and a
//! last table puts the two side by side, with each server's resident memory
//! after the bare, fresh and replay rounds.
//!
//! With `--stores`, [`stores`] then runs the server over Redis and over
//! PostgreSQL, each a local server process this task starts, next to the
//! store's own benchmark tool (`redis-benchmark`, `pgbench`) in the same run.
//!
//! This module starts a server and runs the scenarios; [`wrk`] holds wrk's
//! script and reads its output; [`report`] prints the figures.

mod baseline;
mod peer;
mod report;
mod servers;
mod stores;
mod wrk;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{cargo, project_root, run_step};

/// `cargo xtask bench`'s arguments.
struct Options {
    duration: u32,
    warmup: u32,
    rounds: u32,
    /// Run server and wrk at a raised scheduling priority (`nice -n -10`), so
    /// other work on the machine disturbs the figures less.
    priority: bool,
    connections: u32,
    runtime: String,
    /// Also run the peer server ([`peer`]) and print both side by side.
    peers: bool,
    /// Also run the server over Redis and PostgreSQL ([`stores`]).
    stores: bool,
}

/// One server's run: each scenario's figures per round, and the server's
/// resident memory when the targets' scenarios ended (before any
/// diagnostic one ran).
pub(crate) struct Run {
    results: Vec<(&'static str, Figures)>,
    rss_kib: Option<u64>,
}

/// What one wrk run measured (or the median of several, in the report).
struct Figures {
    rps: f64,
    requests: u64,
    /// Server CPU time (user + system) per request, in microseconds.
    cpu_us: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    errors: String,
    /// Store operations per request (Redis commands, PostgreSQL statements),
    /// when the server ran over a store server ([`Probe`]).
    store_ops: Option<f64>,
    /// The store server's CPU time per request, in microseconds.
    store_cpu_us: Option<f64>,
}

/// Counters of a store server, read before and after each scenario.
trait Probe {
    /// The operations it has run so far: Redis commands, or PostgreSQL
    /// statements in idem's database.
    fn operations(&self) -> Option<u64>;
    /// The CPU time (user + system) its processes have used so far, in
    /// clock ticks.
    fn cpu_ticks(&self) -> Option<u64>;
}

/// The store server a run of the bench server uses: the URL it gets in
/// `IDEM_BENCH_STORE`, and the server's counters.
struct StoreUnderTest<'a> {
    url: &'a str,
    probe: &'a dyn Probe,
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
    let peer = if opts.peers {
        Some(peer::build(&target)?)
    } else {
        None
    };
    let server = target.join("release/examples/bench_server");
    let ours = measure(&server, &SCENARIOS, &opts, None)?;
    report::print(&ours.results, opts.rounds);
    if let Some((peer_bin, peer_name)) = peer {
        let theirs = measure(&peer_bin, &PEER_SCENARIOS, &opts, None)?;
        report::side_by_side(&[("idem (memory store)", &ours), (&peer_name, &theirs)]);
    }
    if opts.stores {
        stores::run(&server, &opts)?;
    }
    Ok(())
}

/// A command run by `taskset` on `cpu`, under `nice -n -10` with
/// `--priority`.
fn pinned(cpu: &str, opts: &Options) -> Command {
    let mut cmd = if opts.priority {
        let mut nice = Command::new("nice");
        nice.args(["-n", "-10", "taskset"]);
        nice
    } else {
        Command::new("taskset")
    };
    cmd.args(["-c", cpu]);
    cmd
}

/// Starts `server_bin` pinned to CPU 0 (over `store` if given) and runs
/// `scenarios` against it with wrk pinned to CPU 1, round after round.
fn measure(
    server_bin: &std::path::Path,
    scenarios: &[&'static str],
    opts: &Options,
    store: Option<&StoreUnderTest<'_>>,
) -> Result<Run, String> {
    let pinned = |cpu: &str| pinned(cpu, opts);
    let mut server = pinned("0");
    if let Some(store) = store {
        server.env("IDEM_BENCH_STORE", store.url);
    }
    let mut server = server
        .arg(server_bin)
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
            let _ = server.wait();
            return Err(format!("{} did not start: {other:?}", server_bin.display()));
        }
    };
    let script = std::env::temp_dir().join(format!("idem-bench-{}.lua", std::process::id()));
    std::fs::write(&script, wrk::SCRIPT)
        .map_err(|e| format!("writing {}: {e}", script.display()))?;

    eprintln!(
        "\n==> {} {url}{} on CPU 0 ({} runtime, 1 thread); wrk on CPU 1, 1 thread, {} connections, \
         {} s warm-up + {} s per scenario, {} round(s){}",
        server_bin.display(),
        store.map_or(String::new(), |s| format!(" over {}", s.url)),
        opts.runtime,
        opts.connections,
        opts.warmup,
        opts.duration,
        opts.rounds,
        if opts.priority { ", nice -10" } else { "" }
    );
    let mut results = Vec::new();
    let mut failure = scenarios
        .iter()
        .filter(|s| s.starts_with("replay"))
        .find_map(|s| wrk::seed(&url, s).err());
    // The targets' scenarios run round after round first, then the
    // diagnostic ones, whose store is unbounded: the server's resident
    // memory is read before they grow it.
    let (diagnostics, targets): (Vec<_>, Vec<_>) = scenarios
        .iter()
        .copied()
        .enumerate()
        .partition(|(_, s)| DIAGNOSTICS.contains(s));
    let rounds = |group: Vec<(usize, &'static str)>| {
        (0..opts.rounds)
            .flat_map(move |round| group.clone().into_iter().map(move |(i, s)| (round, i, s)))
    };
    let runs = rounds(targets).chain(rounds(diagnostics));
    let mut rss_kib = None;
    let seeded = failure.is_none();
    for (round, i, scenario) in runs {
        if !seeded {
            break;
        }
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
        if rss_kib.is_none() && DIAGNOSTICS.contains(&scenario) {
            rss_kib = resident_kib(server.id());
        }
        if opts.warmup > 0 && round == 0 {
            let _ = wrk(opts.warmup, format!("warm{i}"));
        }
        let cpu_before = cpu_ticks(server.id());
        let store_before = store.map(|s| (s.probe.operations(), s.probe.cpu_ticks()));
        let out = match wrk(opts.duration, format!("run{round}-{i}")) {
            Ok(out) => out,
            Err(e) => {
                failure = Some(format!("wrk: {e}"));
                break;
            }
        };
        let cpu_after = cpu_ticks(server.id());
        let store_after = store.map(|s| (s.probe.operations(), s.probe.cpu_ticks()));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        match wrk::parse(&text) {
            Some(mut f) => {
                if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
                    // Linux reports CPU time in ticks of 1/100 s.
                    f.cpu_us = Some((b - a) as f64 * 10_000.0 / f.requests.max(1) as f64);
                }
                if let (Some((ops_a, cpu_a)), Some((ops_b, cpu_b))) = (store_before, store_after) {
                    let per_request = |a: Option<u64>, b: Option<u64>, scale: f64| {
                        Some(b?.saturating_sub(a?) as f64 * scale / f.requests.max(1) as f64)
                    };
                    f.store_ops = per_request(ops_a, ops_b, 1.0);
                    f.store_cpu_us = per_request(cpu_a, cpu_b, 10_000.0);
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
    let rss_kib = rss_kib.or_else(|| resident_kib(server.id()));
    let _ = std::fs::remove_file(&script);
    drop(server.stdin.take()); // the server prints its counters and exits
    for line in lines.map_while(Result::ok) {
        if line.starts_with("metrics") {
            eprintln!("server {line}");
        }
    }
    let _ = server.wait();
    match failure {
        Some(failure) => Err(failure),
        None => Ok(Run { results, rss_kib }),
    }
}

/// The scenarios, in the order they run in each round.
const SCENARIOS: [&str; 4] = ["bare", "fresh", "replay", "fresh-ref"];

/// The diagnostic scenarios, judged against no target: they run after every
/// round of the others.
const DIAGNOSTICS: [&str; 1] = ["fresh-ref"];

/// The scenarios a peer server answers (it has no reference store).
const PEER_SCENARIOS: [&str; 3] = ["bare", "fresh", "replay"];

fn parse(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        duration: 10,
        warmup: 2,
        connections: 32,
        rounds: 1,
        priority: false,
        runtime: "multi".into(),
        peers: false,
        stores: false,
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
            "--peers" => opts.peers = true,
            "--stores" => opts.stores = true,
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

/// The resident set of `pid`, in KiB.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The fields of `/proc/PID/stat` after the command's name: index 0 is
/// the state, 1 the parent's pid, 11 and 12 the user and system time, 13
/// and 14 those of the children it waited for (in clock ticks).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The sum of the tick counts in `fields[range]`.
fn ticks(fields: &[String], range: std::ops::Range<usize>) -> Option<u64> {
    fields
        .get(range)?
        .iter()
        .map(|v| v.parse::<u64>().ok())
        .sum()
}

/// The CPU time (user + system) `pid` has used, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    ticks(&stat_fields(&pid.to_string())?, 11..13)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_ticks() {
        assert!(cpu_ticks(std::process::id()).is_some());
    }

    #[test]
    fn reads_own_resident_memory() {
        assert!(resident_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn peers_is_a_flag() {
        assert!(parse(&["--peers".into()]).unwrap().peers);
        assert!(!parse(&[]).unwrap().peers);
    }

    #[test]
    fn stores_is_a_flag_off_by_default() {
        assert!(parse(&["--stores".into()]).unwrap().stores);
        assert!(!parse(&[]).unwrap().stores);
    }
}
