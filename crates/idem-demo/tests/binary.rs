//! The `idem-demo` binary: its help and its start-up lines.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[test]
fn help_lists_every_flag_and_its_environment_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_idem-demo"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, env) in [
        ("--listen", "IDEM_DEMO_LISTEN"),
        ("--database", "IDEM_DEMO_DATABASE"),
        ("--store-url", "IDEM_STORE_URL"),
        ("--chaos-drop-rate", "IDEM_DEMO_CHAOS_DROP_RATE"),
        ("--chaos-mode", "IDEM_DEMO_CHAOS_MODE"),
        ("--processing-delay-ms", "IDEM_DEMO_PROCESSING_DELAY_MS"),
        ("--drain-timeout", "IDEM_DEMO_DRAIN_TIMEOUT"),
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
        assert!(help.contains(env), "{env} missing from:\n{help}");
    }
}

#[tokio::test]
async fn starts_from_environment_variables_and_prints_its_url_and_a_curl_line() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("env.db");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_idem-demo"))
        .env("IDEM_DEMO_LISTEN", "127.0.0.1:0")
        .env("IDEM_DEMO_DATABASE", &database)
        .env_remove("IDEM_STORE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("start-up lines in time")
            .unwrap()
            .expect("more output");
        seen.push(line);
    }
    let url = seen[0]
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .expect("the URL is printed")
        .to_owned();
    let curl = seen
        .iter()
        .find(|l| l.trim_start().starts_with("curl "))
        .expect("a curl line");
    assert!(curl.contains(&format!("{url}/payments")) && curl.contains("Idempotency-Key: "));
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        database.exists(),
        "the SQLite file is where IDEM_DEMO_DATABASE says"
    );
    child.kill().await.unwrap();
}

#[test]
fn a_store_it_cannot_use_stops_it_with_a_message_and_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_idem-demo"))
        .env("IDEM_DEMO_LISTEN", "127.0.0.1:0")
        .env("IDEM_DEMO_DATABASE", dir.path().join("x.db"))
        .env("IDEM_STORE_URL", "redis://:hunter2@127.0.0.1:1")
        .env("IDEM_CONNECT_TIMEOUT", "2s")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Either the redis feature is off, or the closed port refuses.
    assert!(stderr.contains("redis"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
