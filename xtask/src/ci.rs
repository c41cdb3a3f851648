//! `cargo xtask ci`: everything CI checks, in the order a person would.

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
    // The conformance targets run below, once, with their table.
    run_step(
        "cargo test (unit, integration and doc tests)",
        cargo().args([
            "test",
            "--workspace",
            "--exclude",
            "idem-tests",
            // Every backend of the facade, so its per-backend tests compile and run.
            "--features",
            "idem/all-backends",
        ]),
    )?;
    crate::conformance::run(&[])
}
