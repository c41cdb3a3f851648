//! The containers `cargo xtask` starts are removed at the end of its run:
//! after a normal end, after a failure, and after Ctrl-C (SIGINT). Each case
//! runs `xtask servers redis` for real and counts, with `docker ps`, the
//! containers labelled as idem's before, during and after.
//!
//! Needs a Docker engine and a Redis image (`IDEM_TEST_REDIS_IMAGE`, or the
//! official one already pulled); without them it is SKIPPED loudly, unless
//! `IDEM_REQUIRE` names `redis` (or `all`), as CI does.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OWNER: &str = "label=org.idem.owner=xtask";

/// The cases count every idem container, so they run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn docker(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The ids of the containers matching `filter`, running or not.
fn containers(filter: &str) -> Vec<String> {
    docker(&["ps", "-aq", "--filter", filter])
        .expect("docker ps answers")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn redis_image() -> String {
    std::env::var("IDEM_TEST_REDIS_IMAGE").unwrap_or_else(|_| "redis:7.2".into())
}

/// Whether the test can run here; a loud skip (or a failure, where redis
/// is required) when it cannot.
fn can_run() -> bool {
    let reason = if docker(&["info"]).is_none() {
        Some("no Docker engine answers".to_owned())
    } else if docker(&["image", "inspect", &redis_image()]).is_none() {
        Some(format!(
            "the image {} is not present (cargo xtask images builds the local one)",
            redis_image()
        ))
    } else {
        None
    };
    let Some(reason) = reason else { return true };
    let required = std::env::var("IDEM_REQUIRE")
        .unwrap_or_default()
        .split([',', ' '])
        .any(|n| n.trim() == "redis" || n.trim() == "all");
    assert!(!required, "redis is required (IDEM_REQUIRE) but {reason}");
    eprintln!("\n*** SKIPPED xtask container leak test: {reason} (it did NOT run) ***");
    false
}

/// `xtask servers ARGS`, with its stdin open, its stdout read line by line.
fn start(args: &[&str], envs: &[(&str, &str)]) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("servers")
        .args(args)
        .env_remove("IDEM_TEST_REDIS_URL")
        .env_remove("IDEM_TEST_MSSQL_URL")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("xtask runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Waits until xtask says its servers are ready, and returns its lines.
fn wait_ready(rx: &std::sync::mpsc::Receiver<String>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) if line.starts_with("# ready") => return lines,
            Ok(line) => lines.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    panic!("xtask servers never said ready; it printed {lines:?}");
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "xtask did not exit within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_label(child: &Child) -> String {
    format!("label=org.idem.run={}", child.id())
}

#[test]
fn a_normal_end_removes_the_containers() {
    let _serial = serial();
    if !can_run() {
        return;
    }
    let before = containers(OWNER).len();
    let (mut child, rx) = start(&["redis"], &[]);
    let lines = wait_ready(&rx);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("export IDEM_TEST_REDIS_URL=")),
        "{lines:?}"
    );
    assert_eq!(
        containers(&run_label(&child)).len(),
        1,
        "one Redis container runs"
    );
    drop(child.stdin.take()); // end of input: the normal end
    assert!(wait_exit(&mut child).success());
    assert_eq!(containers(&run_label(&child)), Vec::<String>::new());
    assert_eq!(containers(OWNER).len(), before);
}

#[test]
fn ctrl_c_removes_the_containers() {
    let _serial = serial();
    if !can_run() {
        return;
    }
    let before = containers(OWNER).len();
    let (mut child, rx) = start(&["redis"], &[]);
    wait_ready(&rx);
    assert_eq!(
        containers(&run_label(&child)).len(),
        1,
        "one Redis container runs"
    );
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut child);
    assert!(!status.success(), "an interrupted run does not end well");
    assert_eq!(containers(&run_label(&child)), Vec::<String>::new());
    assert_eq!(containers(OWNER).len(), before);
}

#[test]
fn a_failed_start_removes_the_containers_that_did_start() {
    let _serial = serial();
    if !can_run() {
        return;
    }
    let before = containers(OWNER).len();
    // Redis starts; SQL Server from an image that exists nowhere cannot.
    let (mut child, _rx) = start(
        &["redis", "mssql"],
        &[("IDEM_TEST_MSSQL_IMAGE", "idem-local/no-such-image:none")],
    );
    // The servers start together; the run fails once all have answered,
    // Redis running and SQL Server not, and must then remove Redis.
    let status = wait_exit(&mut child);
    assert!(
        !status.success(),
        "a server that cannot start fails the run"
    );
    assert_eq!(containers(&run_label(&child)), Vec::<String>::new());
    assert_eq!(containers(OWNER).len(), before);
}
