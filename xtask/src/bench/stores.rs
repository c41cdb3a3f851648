//! `cargo xtask bench --stores`: the bench server over Redis and over
//! PostgreSQL, each against the store's own benchmark tool in the same run.
//!
//! For each store, [`servers`](super::servers) starts a local server
//! process on 127.0.0.1 at a free port (PostgreSQL as `nobody` when this
//! task runs as root), the bench server gets its URL in `IDEM_BENCH_STORE`
//! and builds the store through the `idem` facade (`StoreConfig::from_url`,
//! default settings), and wrk runs four scenarios: `bare`, `fresh`,
//! `replay`, and `replay-tier` (replays through the memory tier,
//! `CachedStore`, in front of the same store). Then the store's own tool
//! runs against the same server for as long ([`baseline`]):
//!
//! - Redis: `redis-benchmark -t set,get -c 32 -P 1 -q`. Targets: fresh
//!   requests/s at least 0.8 x (SET requests/s / 2), two round trips being
//!   the floor of a fresh request; `replay-tier` at least 0.95x `bare`.
//!   Redis commands per request are read from `INFO stats`
//!   (`total_commands_processed`) before and after each scenario; it counts
//!   the commands a Lua script runs too, so it is not the round trips.
//! - PostgreSQL: `pgbench` with a one-row upsert shaped like idem's claim, on
//!   a table shaped like idem's records table, `-c 32 -j 1 -M prepared`.
//!   Fresh requests/s is printed against its tps. Statements per request
//!   are the calls `pg_stat_statements` counted in idem's own database (the
//!   extension is preloaded; `BEGIN`/`COMMIT` would count too), before and
//!   after each scenario, and the run fails unless a fresh request measured
//!   two and a replay one.
//!
//! Where the store runs: on CPU 0, beside the bench server, while wrk and
//! the store's tool keep CPU 1 to themselves. On two cores something has to
//! share; this way the load generator is never the one starved (as in the
//! memory run), the store's work counts against the same core as the
//! server's, as a request's cost on one machine, and the tool measures the
//! store with the same layout (client on CPU 1, store on CPU 0). The tool
//! then has CPU 0 for the store alone, so its bound leaves no room for the
//! server's own CPU: the table's `store CPU µs/req` and `server CPU µs/req`
//! columns show how the core was shared.

use std::path::Path;
use std::process::Command;

use super::baseline::{self, RedisBound};
use super::report::{self, median};
use super::servers::{IDEM_DB, LocalPostgres, LocalRedis, PG_BIN};
use super::{Options, StoreUnderTest, measure};

/// The scenarios run over each store, in order.
const STORE_SCENARIOS: [&str; 4] = ["bare", "fresh", "replay", "replay-tier"];

/// The programs this needs, besides wrk and taskset (PostgreSQL's server
/// programs are looked for in their Debian directory).
const TOOLS: [&str; 7] = [
    "setpriv",
    "redis-server",
    "redis-cli",
    "redis-benchmark",
    "psql",
    "pg_isready",
    "pgbench",
];

/// Runs the Redis and then the PostgreSQL rows with `server`, the built
/// bench server.
pub(super) fn run(server: &Path, opts: &Options) -> Result<(), String> {
    if let Some(tool) = TOOLS.iter().find(|t| !baseline::have(t)) {
        return Err(format!(
            "`{tool}` not found: --stores needs Redis and PostgreSQL 15 \
             (Debian: `apt-get install -y util-linux redis-server redis-tools \
             postgresql-15 postgresql-client-15`)"
        ));
    }
    redis(server, opts)?;
    postgres(server, opts)
}

fn redis(server: &Path, opts: &Options) -> Result<(), String> {
    let redis = LocalRedis::start(opts)?;
    let url = redis.url();
    let store = StoreUnderTest {
        url: &url,
        probe: &redis,
    };
    let run = measure(server, &STORE_SCENARIOS, opts, Some(&store))?;
    let mut bounds = Vec::new();
    for _ in 0..opts.rounds {
        bounds.push(baseline::redis_benchmark(redis.port(), opts)?);
    }
    let bound = RedisBound {
        set_rps: median(bounds.iter().map(|b| b.set_rps).collect()),
        get_rps: median(bounds.iter().map(|b| b.get_rps).collect()),
    };
    let title = format!(
        "Redis {} (redis-server on CPU 0 beside the server; wrk and redis-benchmark -c {} -P 1 \
         on CPU 1; idem's store from StoreConfig::from_url, defaults)",
        LocalRedis::version(),
        opts.connections
    );
    report::redis(&title, &run, opts.rounds, bound);
    Ok(())
}

fn postgres(server: &Path, opts: &Options) -> Result<(), String> {
    let pg = LocalPostgres::start(opts)?;
    let url = pg.url(IDEM_DB);
    let store = StoreUnderTest {
        url: &url,
        probe: &pg,
    };
    let run = measure(server, &STORE_SCENARIOS, opts, Some(&store))?;
    let mut tps = Vec::new();
    for _ in 0..opts.rounds {
        tps.push(baseline::pgbench(&pg, opts)?);
    }
    let title = format!(
        "{} (postgres on CPU 0 beside the server, default settings; wrk and pgbench on CPU 1; \
         idem's store from StoreConfig::from_url, defaults)",
        postgres_version()
    );
    let line = baseline::pgbench_line(opts);
    if report::postgres(&title, &run, opts.rounds, &line, median(tps)) {
        Ok(())
    } else {
        Err("PostgreSQL: a fresh request did not take two statements, or a replay one".into())
    }
}

/// `PostgreSQL 15.18`, from `postgres --version`.
fn postgres_version() -> String {
    let out = Command::new(Path::new(PG_BIN).join("postgres"))
        .arg("--version")
        .output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let version = text
        .ok()
        .and_then(|t| t.split_whitespace().nth(2).map(str::to_owned));
    format!("PostgreSQL {}", version.as_deref().unwrap_or("15"))
}
