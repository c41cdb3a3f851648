//! `cargo xtask ci`: everything CI checks, in the order a person would:
//! fmt, clippy, the docs (warnings denied), a publish dry run, the tests,
//! the broker test, the demo under compose, the conformance table, the
//! chaos table.

use crate::conformance::{Selection, needed_kinds};
use crate::servers::Servers;
use crate::util::{cargo, run_step};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("`ci` takes no arguments, got `{arg}`"));
    }
    run_step(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run_step(
        "cargo clippy (warnings denied)",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run_step(
        "cargo doc (warnings denied)",
        cargo().env("RUSTDOCFLAGS", "-D warnings").args([
            "doc",
            "--workspace",
            "--no-deps",
            "--all-features",
        ]),
    )?;
    // Every library crate packages as crates.io would see it, in dependency
    // order, with versions on its path dependencies (nothing is uploaded).
    // `--no-verify`: building each package again from its tarball took
    // more than 18 minutes on a 2-core machine; the builds above and the
    // tests below build the same sources. `--allow-dirty`: a run on a
    // working tree checks what is in it.
    run_step(
        "cargo publish --workspace --dry-run --no-verify",
        cargo().args([
            "publish",
            "--workspace",
            "--dry-run",
            "--no-verify",
            "--allow-dirty",
        ]),
    )?;
    // One set of servers for the whole run: the unit and integration tests
    // that need one (the facade's, the demo's) and the conformance suite
    // share them; they are removed when `servers` is dropped.
    let selection = Selection::all()?;
    let chaos = crate::chaos::Selection::for_ci();
    let mut kinds = needed_kinds(selection.backends());
    kinds.extend(chaos.kinds());
    kinds.sort();
    kinds.dedup();
    let servers = Servers::start(&kinds);
    // The conformance targets run below, once, with their table.
    run_step(
        "cargo test (unit, integration and doc tests)",
        cargo().envs(servers.env()).args([
            "test",
            "--workspace",
            "--exclude",
            "idem-tests",
            // Its broker tests run below, with their counts (`xtask broker`).
            "--exclude",
            "idem-consumer",
            // Every backend of the facade, so its per-backend tests compile
            // and run, and SQL Server's transactional extractor (its tests
            // need no server).
            "--features",
            "idem/all-backends,idem-mssql/axum",
        ]),
    )?;
    // The idempotent consumer against a real NATS JetStream server.
    crate::broker::run(&[])?;
    // The demo's image and compose file; before the conformance table, so
    // that the table is what the run ends with.
    if let Some(engine) = crate::servers::docker_engine() {
        eprintln!("\n==> cargo xtask demo-compose (engine {engine})");
        crate::demo::run(&[])?;
    } else {
        eprintln!("\n*** SKIPPED demo-compose: no Docker engine answers (it did NOT run) ***");
    }
    let conformance = crate::conformance::run_with(&selection, &servers);
    // The fault-injection table last; it pauses and restarts the servers,
    // so it runs once the conformance suite is done with them.
    eprintln!("\n==> cargo xtask chaos");
    let chaos = crate::chaos::run_with(&chaos, &servers);
    match (conformance, chaos) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
    }
}
