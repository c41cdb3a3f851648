//! The demo on PostgreSQL and MySQL/MariaDB (`--database <url>`): the
//! payments and the idempotency records in that database, each payment one
//! transaction with its record. Each case runs on each server, in a database
//! of its own; a server not given is SKIPPED (a failure when required). The
//! kill mid-payment is in `crash.rs`, with SQLite's.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use support::servers::{Fresh, Server};
use support::{alice, http, new_key, pay, race_one_key, replayed, start};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The idempotency records' table (idem's default).
const RECORDS: &str = "idem_records";

/// Stamps one `#[tokio::test]` per server for each case: `async fn
/// case(db: &Fresh)`, run in a fresh database that is dropped after.
macro_rules! on_each_server {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::run(super::Server::Postgres, stringify!($case), super::$case).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::run(super::Server::Mysql, stringify!($case), super::$case).await;
                }
            )*
        }
    };
}

on_each_server!(
    a_payment_is_one_row_and_one_record_and_its_retry_replays,
    racing_duplicates_make_one_payment,
    a_failed_payment_leaves_neither_row_nor_record,
    with_a_store_url_it_is_the_lease_mode,
    the_binary_runs_on_the_database_idem_demo_database_names,
);

async fn run<F: AsyncFnOnce(&Fresh)>(server: Server, test: &str, case: F) {
    let Some(db) = Fresh::new(server, test).await else {
        return;
    };
    case(&db).await;
    db.drop().await;
}

/// The demo in the app, on `db`, in the transactional mode.
async fn start_on(db: &Fresh, processing_delay_ms: u64) -> support::Running {
    let url = db.url.clone();
    let demo = start(move |c| {
        c.database = url.parse().unwrap();
        c.processing_delay_ms = processing_delay_ms;
    })
    .await;
    assert!(demo.demo.is_transactional());
    demo
}

async fn a_payment_is_one_row_and_one_record_and_its_retry_replays(db: &Fresh) {
    let demo = start_on(db, 0).await;
    let key = new_key();
    let first = pay(&demo, &key, &alice()).await;
    assert_eq!(first.status(), 201);
    assert!(!replayed(&first));
    let paid: Value = first.json().await.unwrap();
    assert_eq!(
        (db.count("payments").await, db.count(RECORDS).await),
        (1, 1)
    );

    let retry = pay(&demo, &key, &alice()).await;
    assert_eq!(retry.status(), 201);
    assert!(replayed(&retry), "the retry ran the payment again");
    assert_eq!(retry.json::<Value>().await.unwrap(), paid);
    assert_eq!(
        (db.count("payments").await, db.count(RECORDS).await),
        (1, 1)
    );

    // The payment as the database keeps it: an exact amount, a UTC time.
    let id = paid["id"].as_str().unwrap();
    assert!(id.starts_with("pay_") && id.len() == 36, "{id}");
    let shown: Value = http()
        .get(demo.url(&format!("/payments/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, paid);
    assert_eq!(shown["amount"], "99.99");
    let created = shown["created_at"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z') && &created[10..11] == "T",
        "{created}"
    );
    let small = json!({"amount": "0.1", "currency": "JPY", "recipient": "bob@example.com"});
    let second: Value = pay(&demo, &new_key(), &small).await.json().await.unwrap();
    assert_eq!(second["amount"], "0.10");
    let listed: Vec<Value> = demo.listed().await;
    let ids: Vec<&str> = listed.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id, second["id"].as_str().unwrap()], "oldest first");
    assert_eq!(demo.payment_rows().await, 2);
}

async fn racing_duplicates_make_one_payment(db: &Fresh) {
    let demo = start_on(db, 300).await;
    race_one_key(&demo, 20).await;
    assert_eq!(
        (db.count("payments").await, db.count(RECORDS).await),
        (1, 1)
    );
}

/// The database refuses one recipient: the handler's insert fails and it
/// answers 500, so the transaction rolls back, the claim included. Once the
/// database takes the recipient again, the retry runs afresh.
async fn a_failed_payment_leaves_neither_row_nor_record(db: &Fresh) {
    let demo = start_on(db, 0).await;
    db.execute(
        "ALTER TABLE payments ADD CONSTRAINT refused CHECK (recipient <> 'mallory@example.com')",
    )
    .await;
    let mallory = json!({"amount": 5, "currency": "EUR", "recipient": "mallory@example.com"});
    let key = new_key();
    let failed = pay(&demo, &key, &mallory).await;
    assert_eq!(failed.status(), 500);
    assert_eq!(
        (db.count("payments").await, db.count(RECORDS).await),
        (0, 0)
    );

    db.execute("ALTER TABLE payments DROP CONSTRAINT refused")
        .await;
    let retry = pay(&demo, &key, &mallory).await;
    assert_eq!(retry.status(), 201);
    assert!(!replayed(&retry), "the failed run was kept");
    assert_eq!(
        (db.count("payments").await, db.count(RECORDS).await),
        (1, 1)
    );
}

/// `--store-url` still means the lease mode, here with both tables in the
/// same database but written apart.
async fn with_a_store_url_it_is_the_lease_mode(db: &Fresh) {
    let url = db.url.clone();
    let demo = start(move |c| {
        c.database = url.parse().unwrap();
        c.store_url = Some(url);
    })
    .await;
    assert!(!demo.demo.is_transactional());
    let key = new_key();
    assert_eq!(pay(&demo, &key, &alice()).await.status(), 201);
    assert!(replayed(&pay(&demo, &key, &alice()).await));
    assert_eq!(
        (db.count("payments").await, db.count(RECORDS).await),
        (1, 1)
    );
}

async fn the_binary_runs_on_the_database_idem_demo_database_names(db: &Fresh) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_idem-demo"))
        .env("IDEM_DEMO_LISTEN", "127.0.0.1:0")
        .env("IDEM_DEMO_DATABASE", &db.url)
        .env_remove("IDEM_STORE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("start-up lines in time")
            .unwrap()
            .expect("more output")
    };
    let first = next().await;
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the URL is printed")
        .to_owned();
    let second = next().await;
    assert!(
        second.contains("one transaction each") && second.contains(&db.url[..8]),
        "{second}"
    );
    let key = new_key();
    let client = http();
    let pay = || {
        client
            .post(format!("{base}/payments"))
            .header("Idempotency-Key", &key)
            .json(&alice())
            .send()
    };
    assert_eq!(pay().await.unwrap().status(), 201);
    assert!(replayed(&pay().await.unwrap()));
    assert_eq!(
        (db.count("payments").await, db.count(RECORDS).await),
        (1, 1)
    );
    child.kill().await.unwrap();
}

/// Runs the binary with `IDEM_DEMO_DATABASE=database` and returns its exit
/// status and standard error.
fn start_fails(database: &str) -> (std::process::ExitStatus, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_idem-demo"))
        .env("IDEM_DEMO_LISTEN", "127.0.0.1:0")
        .env("IDEM_DEMO_DATABASE", database)
        .env_remove("IDEM_STORE_URL")
        .env("IDEM_CONNECT_TIMEOUT", "3s")
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

#[test]
fn an_unsupported_scheme_stops_it_with_a_message_and_no_password() {
    let (status, stderr) = start_fails("redis://:hunter2@127.0.0.1:6379");
    assert_eq!(status.code(), Some(2), "a usage error: {stderr}");
    assert!(
        stderr.contains("unsupported database URL scheme `redis`"),
        "{stderr}"
    );
    assert!(stderr.contains("postgres://"), "{stderr}");
    assert!(
        !stderr.contains("hunter2") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn a_database_it_cannot_reach_stops_it_with_a_message_and_no_password() {
    for url in [
        "postgres://app:hunter2@127.0.0.1:1/app",
        "mysql://root:hunter2@127.0.0.1:1/test",
    ] {
        let (status, stderr) = start_fails(url);
        assert_eq!(status.code(), Some(1), "{url}: {stderr}");
        assert!(
            stderr.contains("idem-demo: cannot open the database")
                && stderr.contains("127.0.0.1:1"),
            "{url}: {stderr}"
        );
        assert!(
            !stderr.contains("hunter2") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}
