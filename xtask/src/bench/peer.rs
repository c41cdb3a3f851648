//! The peer server of `cargo xtask bench --peers`: the benchmark's handler
//! behind the `idempotent` crate on its memory store.
//!
//! Its source is a template in `xtask/bench-peer` (outside idem's workspace
//! members). It is copied under the target directory and built there as a
//! workspace of its own, so the peer's MSRV and lockfile never touch idem's.
//! The copy starts from idem's lockfile, so the dependencies both share
//! (axum, tokio, hyper) resolve to the versions this target directory has
//! already built.

use std::path::{Path, PathBuf};

use crate::util::{cargo, project_root, run_step};

/// The template's files, relative to `xtask/bench-peer`.
const FILES: [&str; 2] = ["Cargo.toml", "src/main.rs"];

/// Builds the peer server under `target` and returns its binary and the
/// peer's name with the version Cargo chose (`idempotent 0.3.0`).
pub(super) fn build(target: &Path) -> Result<(PathBuf, String), String> {
    let template = project_root().join("xtask/bench-peer");
    let dir = target.join("bench-peer");
    let io = |what: &str, path: &Path, e: std::io::Error| format!("{what} {}: {e}", path.display());
    std::fs::create_dir_all(dir.join("src")).map_err(|e| io("creating", &dir, e))?;
    for file in FILES {
        let to = dir.join(file);
        std::fs::copy(template.join(file), &to).map_err(|e| io("copying to", &to, e))?;
    }
    let lock = dir.join("Cargo.lock");
    if !lock.exists() {
        let ours = project_root().join("Cargo.lock");
        std::fs::copy(&ours, &lock).map_err(|e| io("copying", &ours, e))?;
    }
    run_step(
        "cargo build --release (the peer server, in a workspace of its own)",
        cargo()
            .current_dir(&dir)
            .args(["build", "--release", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", target),
    )?;
    let text = std::fs::read_to_string(&lock).map_err(|e| io("reading", &lock, e))?;
    let version = locked_version(&text, "idempotent").unwrap_or("?");
    Ok((
        target.join("release/idem-bench-peer"),
        format!("idempotent {version}"),
    ))
}

/// The version of `package` in a Cargo.lock.
fn locked_version<'a>(lock: &'a str, package: &str) -> Option<&'a str> {
    let name = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    lines.find(|l| l.trim() == name)?;
    let version = lines.next()?.trim().strip_prefix("version = \"")?;
    version.strip_suffix('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_locked_version() {
        let lock = "[[package]]\nname = \"idempotent-x\"\nversion = \"9.0.0\"\n\n\
                    [[package]]\nname = \"idempotent\"\nversion = \"0.3.0\"\nsource = \"registry\"\n";
        assert_eq!(locked_version(lock, "idempotent"), Some("0.3.0"));
        assert_eq!(locked_version(lock, "absent"), None);
    }

    #[test]
    fn the_template_is_outside_the_workspace() {
        let manifest = std::fs::read_to_string(project_root().join("xtask/bench-peer/Cargo.toml"))
            .expect("the template's manifest");
        assert!(
            manifest.contains("\n[workspace]"),
            "the template must be its own workspace"
        );
    }
}
