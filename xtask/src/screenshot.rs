//! `cargo xtask screenshot`: runs the demo's browser test (the checkout
//! page pressed three times fast in headless Chromium), which saves a
//! screenshot under the target directory, and copies it to
//! `docs/checkout.png`, the picture the README shows.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use crate::util::{cargo, project_root};

/// The browser test that takes the screenshot.
const TEST: &str = "three_fast_presses_make_one_payment";
/// The line it prints, followed by the screenshot's path.
const MARK: &str = "screenshot: ";
/// Where the README's copy lives, from the project root.
const COPY: &str = "docs/checkout.png";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("screenshot takes no arguments (got `{extra}`)"));
    }
    eprintln!("\n==> browser test {TEST} (idem-demo, headless Chromium)");
    let mut child = cargo()
        .args(["test", "-p", "idem-demo", "--test", "browser", "--", TEST])
        .args(["--exact", "--nocapture"])
        // A skipped browser test takes no screenshot: it must run.
        .env_remove("IDEM_BROWSER")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo test could not start: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut taken = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the test's output: {e}"))?;
        println!("{line}");
        if let Some(path) = line.strip_prefix(MARK) {
            taken = Some(PathBuf::from(path.trim()));
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo test: {e}"))?;
    if !status.success() {
        return Err(format!("the browser test failed ({status})"));
    }
    let taken = taken.ok_or_else(|| format!("the browser test printed no `{MARK}` line"))?;
    let png = std::fs::read(&taken).map_err(|e| format!("{}: {e}", taken.display()))?;
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(format!("{} is not a PNG", taken.display()));
    }
    let copy = project_root().join(COPY);
    if let Some(dir) = copy.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&copy, &png).map_err(|e| format!("{}: {e}", copy.display()))?;
    println!("{COPY}: {} bytes, from {}", png.len(), taken.display());
    Ok(())
}
