//! The stores' own benchmark tools, run in the same run as idem's scenarios
//! to give each store's bound: `redis-benchmark` (SET and GET, one round
//! trip each) and `pgbench` (a one-row upsert on a table shaped like idem's
//! records table). Both run pinned to CPU 1, where wrk runs, against the
//! store on CPU 0: the same layout as wrk, bench server and store.

use std::process::Command;

use super::servers::{BENCH_DB, LocalPostgres};
use super::{Options, pinned};

/// What `redis-benchmark -t set,get` measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RedisBound {
    /// SET requests/s.
    pub(super) set_rps: f64,
    /// GET requests/s.
    pub(super) get_rps: f64,
}

/// Runs `redis-benchmark -t set,get -c CONNECTIONS -n N -P 1 -q` against
/// 127.0.0.1:`port`, N sized from a first short run so that each test lasts
/// about `--duration`.
pub(super) fn redis_benchmark(port: u16, opts: &Options) -> Result<RedisBound, String> {
    let run = |n: u64| -> Result<RedisBound, String> {
        let out = pinned("1", opts)
            .args([
                "redis-benchmark",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args(["-t", "set,get", "-P", "1", "-q"])
            .args(["-c", &opts.connections.to_string(), "-n", &n.to_string()])
            .output()
            .map_err(|e| format!("could not start redis-benchmark: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match (rps_of(&text, "SET"), rps_of(&text, "GET")) {
            (Some(set_rps), Some(get_rps)) => Ok(RedisBound { set_rps, get_rps }),
            _ => Err(format!("could not read redis-benchmark's output:\n{text}")),
        }
    };
    let probe = run(20_000)?;
    let n = probe.set_rps.max(probe.get_rps) * f64::from(opts.duration);
    run((n as u64).max(20_000))
}

/// The requests/s `redis-benchmark -q` printed for `test` (its progress
/// lines end in `\r`, the result line in `\n`).
fn rps_of(text: &str, test: &str) -> Option<f64> {
    let prefix = format!("{test}: ");
    text.split(['\r', '\n'])
        .filter_map(|part| part.trim().strip_prefix(&prefix))
        .find_map(|rest| rest.split_once(" requests per second"))
        .and_then(|(rps, _)| rps.trim().parse().ok())
}

/// The table pgbench writes: the columns and key of idem's PostgreSQL
/// records table (`crates/idem-sql/src/postgres/schema.rs`).
const TABLE: &str = "CREATE TABLE bench_records (\
     idem_key BYTEA NOT NULL PRIMARY KEY, value BYTEA NOT NULL, token BYTEA, \
     expires_at TIMESTAMPTZ NOT NULL); \
     CREATE INDEX bench_records_expires_at_idx ON bench_records (expires_at)";

/// pgbench's transaction: one statement, the shape of idem's claim (an
/// upsert that takes the row over only if it expired, returning what is
/// there) on a new key of about the length of idem's keys, with a
/// 200-byte value and the expiry bound in microseconds, as idem binds it.
/// (No `:` in its literals: pgbench would read one as a variable.)
const SCRIPT: &str = "\\set k random(1, 1000000000000)
\\set lease 60000000
INSERT INTO bench_records (idem_key, value, token, expires_at) VALUES (\
convert_to('idempotency-bench-' || CAST(:client_id AS text) || '-' || CAST(:k AS text), 'UTF8'), \
convert_to(repeat('v', 200), 'UTF8'), '\\x0123456789abcdef', \
now() + CAST(:lease AS float8) * interval '1 microsecond') \
ON CONFLICT (idem_key) DO UPDATE SET \
value = CASE WHEN bench_records.expires_at <= now() THEN excluded.value ELSE bench_records.value END, \
token = CASE WHEN bench_records.expires_at <= now() THEN excluded.token ELSE bench_records.token END, \
expires_at = CASE WHEN bench_records.expires_at <= now() THEN excluded.expires_at \
ELSE bench_records.expires_at END \
RETURNING value, token;
";

/// The pgbench command line, for the report.
pub(super) fn pgbench_line(opts: &Options) -> String {
    format!(
        "pgbench -n -M prepared -f upsert.sql -c {} -j 1 -T {}",
        opts.connections, opts.duration
    )
}

/// Creates pgbench's table and runs the one-row upsert for `--duration`
/// seconds ([`pgbench_line`]); returns its tps.
pub(super) fn pgbench(pg: &LocalPostgres, opts: &Options) -> Result<f64, String> {
    pg.sql(BENCH_DB, "DROP TABLE IF EXISTS bench_records")?;
    pg.sql(BENCH_DB, TABLE)?;
    let script = std::env::temp_dir().join(format!("idem-bench-upsert-{}.sql", std::process::id()));
    std::fs::write(&script, SCRIPT).map_err(|e| format!("writing {}: {e}", script.display()))?;
    let out = pinned("1", opts)
        .args(["pgbench", "-n", "-M", "prepared", "-h", "127.0.0.1"])
        .args(["-p", &pg.port().to_string(), "-U", "postgres"])
        .arg("-f")
        .arg(&script)
        .args(["-c", &opts.connections.to_string(), "-j", "1"])
        .args(["-T", &opts.duration.to_string()])
        .arg(BENCH_DB)
        .output();
    let _ = std::fs::remove_file(&script);
    let out = out.map_err(|e| format!("could not start pgbench: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match (tps_of(&text), failed_of(&text)) {
        (Some(tps), Some(0)) if out.status.success() => Ok(tps),
        _ => Err(format!(
            "pgbench failed or could not be read:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// pgbench's `tps = N (without initial connection time)`.
fn tps_of(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// pgbench's `number of failed transactions: N (...)`.
fn failed_of(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("number of failed transactions: "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Whether a program is on the PATH (it answers `--version`).
pub(super) fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `redis-benchmark -p 16399 -t set,get -c 32 -n 20000 -P 1 -q`, redis 7.0.15.
    const REDIS_BENCHMARK: &str = " \rSET: rps=0.0 (overall: 0.0) avg_msec=-nan (overall: -nan)\r      \
        \rSET: 81300.81 requests per second, p50=0.223 msec\n \
        \rGET: rps=1100.0 (overall: 68750.0) avg_msec=0.227 (overall: 0.227)\r      \
        \rGET: rps=64175.3 (overall: 64247.1) avg_msec=0.333 (overall: 0.331)\r      \
        \rGET: 64516.13 requests per second, p50=0.287 msec\n\n";

    /// `pgbench -n -M prepared -f upsert.sql -c 32 -j 1 -T 2` with [`SCRIPT`],
    /// PostgreSQL 15.18.
    const PGBENCH: &str = "pgbench (15.18 (Debian 15.18-0+deb12u1))\n\
        transaction type: /tmp/up2.sql\nscaling factor: 1\nquery mode: prepared\n\
        number of clients: 32\nnumber of threads: 1\nmaximum number of tries: 1\n\
        duration: 2 s\nnumber of transactions actually processed: 25816\n\
        number of failed transactions: 0 (0.000%)\nlatency average = 2.342 ms\n\
        initial connection time = 161.156 ms\n\
        tps = 13662.627928 (without initial connection time)\n";

    /// pgbench when every client aborted (a statement that did not prepare).
    const PGBENCH_ABORTED: &str = "duration: 2 s\n\
        number of transactions actually processed: 0\n\
        number of failed transactions: 0 (NaN%)\n";

    #[test]
    fn reads_redis_benchmark_output() {
        assert_eq!(rps_of(REDIS_BENCHMARK, "SET"), Some(81300.81));
        assert_eq!(rps_of(REDIS_BENCHMARK, "GET"), Some(64516.13));
        assert_eq!(rps_of(REDIS_BENCHMARK, "INCR"), None);
        // Older versions end the line after the figure.
        assert_eq!(
            rps_of("SET: 1000.50 requests per second\n", "SET"),
            Some(1000.5)
        );
    }

    #[test]
    fn reads_pgbench_output() {
        assert_eq!(tps_of(PGBENCH), Some(13662.627928));
        assert_eq!(failed_of(PGBENCH), Some(0));
        assert_eq!(tps_of(PGBENCH_ABORTED), None);
    }

    #[test]
    fn the_upsert_names_the_table_it_creates() {
        assert!(TABLE.contains("CREATE TABLE bench_records ("));
        assert!(SCRIPT.contains("INSERT INTO bench_records"));
        assert!(SCRIPT.contains("ON CONFLICT (idem_key) DO UPDATE"));
    }
}
