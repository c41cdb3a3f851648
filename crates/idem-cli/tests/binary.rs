//! The real `idem` binary, against SQLite (a temporary file) and, when their
//! URLs are set, PostgreSQL, MySQL/MariaDB, Redis and Redis Cluster
//! (`cargo xtask servers` starts them). A server whose URL is missing is
//! a loud SKIP, or a failure when `IDEM_REQUIRE` names it.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use idem::{Completion, Fingerprint, Record, StoreConfig, StoredResponse};
use idem_cli::exit;
use serde_json::Value;

/// What one run of the binary gave.
struct Ran {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&self.stdout),
                self.stderr
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `idem` with `env` as its only `IDEM_*` variables.
fn idem(env: &[(&str, &str)], args: &[&str]) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idem"));
    for (name, _) in std::env::vars() {
        if name.starts_with("IDEM_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd.envs(env.iter().copied()).args(args).output().unwrap();
    Ran {
        code: out.status.code().expect("idem was killed by a signal"),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The password in `url`'s user info, if any.
fn password(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let user_info = &authority[..authority.rfind('@')?];
    let password = &user_info[user_info.find(':')? + 1..];
    (!password.is_empty()).then_some(password)
}

/// A fresh name for this run.
fn fresh(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Every command against the store at `url`, in a table and a key prefix of
/// its own; `keeps_expired`: a store that keeps expired records until a
/// purge (SQL).
async fn every_command(url: &str, keeps_expired: bool) {
    let table = fresh("idem_cli_");
    let prefix = fresh("idem-cli-") + ":";
    let mut config = StoreConfig::from_url(url);
    config.key_prefix = prefix.clone();
    config.table = Some(table.clone());
    let store = config.connect().await.unwrap();
    let env = [
        ("IDEM_STORE_URL", url),
        ("IDEM_TABLE", table.as_str()),
        ("IDEM_KEY_PREFIX", prefix.as_str()),
    ];
    let space = config.key_space().unwrap();
    let key = |scope: &str, key: &str| {
        space.key(
            &idem::Scope::new(scope).unwrap(),
            &idem::IdempotencyKey::new(key).unwrap(),
        )
    };

    // A completed record, through the engine as the layer writes it.
    let fp = Fingerprint::of_request("POST", "/orders", b"{}");
    let response = StoredResponse {
        status: 201,
        headers: vec![(
            "content-type".into(),
            Bytes::from_static(b"application/json"),
        )],
        body: Bytes::from_static(b"{\"id\":1}"),
    };
    let engine = config.engine_over(store.clone());
    engine
        .execute(&key("tenant-a", "order-1"), fp, |_| async {
            ((), Completion::Keep(response))
        })
        .await
        .unwrap();
    // One in progress, and one expired.
    let pending = Record::in_progress(fp, Duration::from_secs(60)).encode();
    store
        .claim(
            &key("tenant-a", "order-2"),
            pending,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    store
        .store(
            &key("tenant-a", "old"),
            "x".into(),
            Duration::from_millis(1),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let mut said = String::new();
    let mut run = |args: &[&str]| {
        let ran = idem(&env, args);
        said.push_str(&ran.text());
        said.push_str(&ran.stderr);
        ran
    };

    let got = run(&["get", "--scope", "tenant-a", "--key", "order-1", "--json"]);
    assert_eq!(got.code, 0, "{}", got.stderr);
    let doc = got.json();
    assert_eq!(doc["state"], "completed");
    assert_eq!(doc["status"], 201);
    assert_eq!(doc["body_size"], 8);
    assert_eq!(doc["fingerprint"], fp.to_string());
    assert_eq!(doc["headers"][0]["value"], "application/json");
    let body = run(&["get", "--scope", "tenant-a", "--key", "order-1", "--body"]);
    assert_eq!(body.stdout, b"{\"id\":1}");
    let text = run(&["get", "--scope", "tenant-a", "--key", "order-1"]).text();
    assert!(text.contains("status       201"), "{text}");
    let running = run(&["get", "--scope", "tenant-a", "--key", "order-2", "--json"]);
    assert_eq!(running.json()["state"], "in_progress");
    assert_eq!(running.json()["lease_ms"], 60_000);

    let stats = run(&["stats", "--json"]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    let doc = stats.json();
    assert_eq!(
        (doc["records"].clone(), doc["in_progress"].clone()),
        (2.into(), 1.into())
    );
    assert_eq!(doc["completed"], 1);
    assert_eq!(doc["key_prefix"], prefix.as_str());
    let purged = run(&["purge", "--json"]);
    assert_eq!(purged.code, 0, "{}", purged.stderr);
    if keeps_expired {
        assert_eq!(doc["expired"], 1, "{doc}");
        assert_eq!(purged.json()["purged"], 1);
        assert_eq!(run(&["stats", "--json"]).json()["expired"], 0);
    } else {
        assert_eq!(doc["expired"], Value::Null, "{doc}");
        assert_eq!(purged.json()["purged"], Value::Null);
        assert!(run(&["purge"]).text().contains("expires records by itself"));
    }

    let check = run(&["check", "--json"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let steps = check.json()["steps"].as_array().unwrap().len();
    assert_eq!(steps, 6);
    assert!(run(&["check"]).text().contains("ok: the store works"));
    // The check cleaned up after itself.
    assert_eq!(run(&["stats", "--json"]).json()["records"], 2);

    let deleted = run(&[
        "delete", "--scope", "tenant-a", "--key", "order-1", "--json",
    ]);
    assert_eq!(deleted.json()["existed"], true);
    let again = run(&["delete", "--scope", "tenant-a", "--key", "order-1"]);
    assert_eq!(again.code, 0);
    assert!(again.text().contains("nothing deleted"), "{}", again.text());
    let gone = run(&["get", "--scope", "tenant-a", "--key", "order-1"]);
    assert_eq!(gone.code, i32::from(exit::NOT_FOUND), "{}", gone.stderr);
    assert!(
        gone.stderr.contains("no record for key \"order-1\""),
        "{}",
        gone.stderr
    );
    assert!(
        store
            .find(&key("tenant-a", "order-1"))
            .await
            .unwrap()
            .is_none()
    );

    if let Some(password) = password(url) {
        // The password may also be a user or database name ("postgres"):
        // look for it where a URL carries it.
        assert!(
            !said.contains(&format!(":{password}@")),
            "the password was printed:\n{said}"
        );
        assert!(
            said.contains(":***@"),
            "the URL was not shown redacted:\n{said}"
        );
    }
}

/// The URL in `var`, or `None` after a loud SKIP (a failure when
/// `IDEM_REQUIRE` names `backend`).
fn server(var: &str, backend: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => idem_conformance::skip(
            backend,
            &format!("the idem command's tests: {var} is not set"),
        ),
    }
}

#[tokio::test]
async fn sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idem.db").display());
    every_command(&url, true).await;
}

#[tokio::test]
async fn postgres() {
    if let Some(url) = server("IDEM_TEST_POSTGRES_URL", "postgres") {
        every_command(&url, true).await;
    }
}

#[tokio::test]
async fn mysql() {
    if let Some(url) = server("IDEM_TEST_MYSQL_URL", "mysql") {
        every_command(&url, true).await;
    }
}

#[tokio::test]
async fn redis() {
    if let Some(url) = server("IDEM_TEST_REDIS_URL", "redis") {
        every_command(&url, false).await;
    }
}

#[tokio::test]
async fn redis_cluster() {
    if let Some(url) = server("IDEM_TEST_REDIS_CLUSTER_URL", "redis-cluster") {
        every_command(&url, false).await;
    }
}

#[test]
fn bad_settings_give_their_exit_codes_and_never_the_password() {
    let unknown = idem(
        &[],
        &["--store-url", "mongodb://admin:hunter2@db:27017", "stats"],
    );
    assert_eq!(unknown.code, i32::from(exit::CONFIG), "{}", unknown.stderr);
    assert!(
        unknown
            .stderr
            .contains("unknown store URL scheme `mongodb`"),
        "{}",
        unknown.stderr
    );

    let unset = idem(&[], &["check"]);
    assert_eq!(unset.code, i32::from(exit::CONFIG), "{}", unset.stderr);
    assert!(unset.stderr.contains("IDEM_STORE_URL"), "{}", unset.stderr);

    let env = [
        ("IDEM_CONNECT_TIMEOUT", "300ms"),
        ("IDEM_OPERATION_TIMEOUT", "300ms"),
    ];
    for url in [
        "redis://:hunter2@127.0.0.1:1",
        "postgres://app:hunter2@127.0.0.1:1/db",
    ] {
        let down = idem(&env, &["--store-url", url, "--json", "check"]);
        assert_eq!(
            down.code,
            i32::from(exit::UNAVAILABLE),
            "{url}: {}",
            down.stderr
        );
        let doc: Value = serde_json::from_str(&down.stderr).unwrap();
        assert_eq!(doc["error"]["kind"], "unavailable");
        assert!(!down.stderr.contains("hunter2"), "{}", down.stderr);
    }

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "lease = \"soon\"\n").unwrap();
    let path = file.path().to_str().unwrap();
    let bad_file = idem(&[], &["--config", path, "stats"]);
    assert_eq!(
        bad_file.code,
        i32::from(exit::CONFIG),
        "{}",
        bad_file.stderr
    );

    let usage = idem(&[], &["get", "--scope", "s"]);
    assert_eq!(usage.code, i32::from(exit::USAGE), "{}", usage.stderr);
}

#[test]
fn a_config_file_names_the_store_and_the_flag_wins() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-file.db");
    let file = dir.path().join("idem.toml");
    std::fs::write(
        &file,
        format!(
            "store_url = \"sqlite://{}\"\nkey_prefix = \"app:\"\n",
            db.display()
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let stats = idem(&[], &["--config", file, "--json", "stats"]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    assert_eq!(stats.json()["key_prefix"], "app:");
    assert!(db.exists());

    let other = dir.path().join("from-flag.db");
    let url = format!("sqlite://{}", other.display());
    let flagged = idem(&[], &["--config", file, "--store-url", &url, "stats"]);
    assert_eq!(flagged.code, 0, "{}", flagged.stderr);
    assert!(other.exists());
}

#[test]
fn the_help_lists_every_command() {
    let help = idem(&[], &["--help"]);
    assert_eq!(help.code, 0);
    let text = help.text();
    for command in [
        "get",
        "delete",
        "purge",
        "check",
        "stats",
        "--json",
        "--store-url",
        "--config",
    ] {
        assert!(text.contains(command), "{command} in {text}");
    }
}
