//! Project tasks for idem: `cargo xtask conformance`, `cargo xtask ci`.
//!
//! Thin on purpose: it calls `$CARGO` and reads what the tests print.

mod backends;
mod bench;
mod ci;
mod conformance;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  conformance [--backend NAME ...] [--require NAME ...]
      run the conformance suite on every backend (or those named) and print a
      table; a skipped --require'd backend fails the run (IDEM_REQUIRE adds to it)
  ci  fmt check, clippy with warnings denied, every test, then conformance
  bench [--duration S] [--warmup S] [--connections N] [--rounds N]
        [--priority] [--runtime multi|current]
      load benchmark of the idempotency layer (wrk on loopback, not part of CI)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("conformance") => conformance::run(&args[1..]),
        Some("ci") => ci::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
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
