//! The same demo binary on another store, by one environment variable.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts the binary with `IDEM_STORE_URL` set and returns its child and URL.
async fn start(store_url: &str, database: &std::path::Path) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_idem-demo"))
        .env("IDEM_DEMO_LISTEN", "127.0.0.1:0")
        .env("IDEM_DEMO_DATABASE", database)
        .env("IDEM_STORE_URL", store_url)
        .env("IDEM_KEY_PREFIX", "demo-swap-test:")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("start-up line in time")
        .unwrap()
        .expect("a start-up line");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .expect("the URL is printed")
        .to_owned();
    // Keep reading: a closed pipe would fail the demo's next print.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

#[tokio::test]
async fn the_same_binary_runs_on_redis_when_idem_store_url_says_so_with_its_key_prefix() {
    let Ok(redis_url) = std::env::var("IDEM_TEST_REDIS_URL") else {
        let required = std::env::var("IDEM_REQUIRE").unwrap_or_default();
        assert!(
            !required.split(',').any(|b| b.trim() == "redis"),
            "redis is required but IDEM_TEST_REDIS_URL is not set"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED demo-on-redis: IDEM_TEST_REDIS_URL is not set ***"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = start(&redis_url, &dir.path().join("demo.db")).await;
    let key = uuid::Uuid::new_v4().to_string();
    let pay = || {
        reqwest::Client::new()
            .post(format!("{url}/payments"))
            .header("Idempotency-Key", &key)
            .json(&serde_json::json!({"amount": 12.5, "currency": "EUR", "recipient": "bob@example.com"}))
            .send()
    };
    let first = pay().await.unwrap();
    assert_eq!(first.status(), 201);
    let second = pay().await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");

    // The record is in Redis, under the IDEM_KEY_PREFIX and the client's key.
    let found = std::process::Command::new("redis-cli")
        .args([
            "-u",
            &redis_url,
            "--scan",
            "--pattern",
            &format!("demo-swap-test:*{key}"),
        ])
        .output()
        .expect("redis-cli runs");
    let found = String::from_utf8_lossy(&found.stdout);
    assert_eq!(
        found.lines().count(),
        1,
        "the record is not in Redis: {found:?}"
    );
    child.kill().await.unwrap();
}
