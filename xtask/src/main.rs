//! Project tasks for idem: `cargo xtask ci`, `cargo xtask conformance`,
//! `cargo xtask chaos`, `cargo xtask images`, `cargo xtask servers`,
//! `cargo xtask demo-compose`.
//!
//! Thin on purpose: it calls `$CARGO` and reads what the tests print.

mod backends;
mod bench;
mod broker;
mod chaos;
mod ci;
mod conformance;
mod demo;
mod images;
mod screenshot;
mod servers;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  conformance [--backend NAME ...] [--require NAME ...]
      run the conformance suite on every backend (or those named) and print a
      table; a skipped --require'd backend fails the run (IDEM_REQUIRE adds to it)
  ci  fmt check, clippy with warnings denied, every test, then conformance
      and chaos, with the servers in containers (testcontainers) for the
      whole run
  chaos [--backend NAME ...] [--fault NAME ...] [--keys N] [--apps N]
        [--copies N]
      fault injection (tests/chaos): app processes over one shared store
      (redis, redis-cluster, postgres, mysql, sqlite), each fault (kill,
      pause, cut, reset, restart, sigterm) while requests are in flight, a
      checker over what ran, a table, and the self-test (pause with
      completion retries off must show violations)
  images [--force]
      build the local server images from Debian's packages (for machines that
      reach no container registry); images that exist are kept
  servers [KIND ...]
      start the test servers (redis, postgres, mysql, mssql) in containers,
      print their URLs, hold them until standard input closes or Ctrl-C
  demo-compose
      build the demo's image, start it with docker-compose over Redis and
      PostgreSQL, check a replayed payment, tear everything down
  bench [--duration S] [--warmup S] [--connections N] [--rounds N]
        [--priority] [--runtime multi|current] [--peers] [--stores]
      load benchmark of the idempotency layer (wrk on loopback, not part of CI);
      --peers also runs the `idempotent` crate's memory store, side by side;
      --stores also runs it over a local Redis and PostgreSQL, beside
      redis-benchmark and pgbench
  broker [--port N]
      the idempotent NATS JetStream consumer (crates/idem-consumer) against a
      real nats-server, started on 127.0.0.1:4222 (or N) if none listens there;
      prints the counts per scenario and `N passed, M failed`
  screenshot
      run the demo's checkout page in headless Chromium (the browser test)
      and copy its screenshot to docs/checkout.png";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("conformance") => conformance::run(&args[1..]),
        Some("ci") => ci::run(&args[1..]),
        Some("chaos") => chaos::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("broker") => broker::run(&args[1..]),
        Some("images") => images::run(&args[1..]),
        Some("servers") => servers::run(&args[1..]),
        Some("demo-compose") => demo::run(&args[1..]),
        Some("screenshot") => screenshot::run(&args[1..]),
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
