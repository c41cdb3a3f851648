//! A payment cut by `kill -9`: in the default transactional mode the
//! payment and its idempotency record were one transaction, so nothing is
//! left and the retry pays once, at once; in the lease mode the dead
//! process's claim holds the key until its lease ends. The transactional
//! case runs on SQLite, PostgreSQL and MySQL/MariaDB.

#![cfg(unix)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::new_key;
use support::process::{Got, Process, client, pay};
use support::servers::{Fresh, Server};

/// Starts a payment that takes 3 s, kills the process 1 s into it, starts a
/// second one on the same database (a SQLite file, or a server's URL), and
/// retries: what the first retry got,
/// how long it took, and the payments made for the key in the end.
async fn kill_mid_payment(database: &Path, mode: &[&str]) -> (Got, Duration, usize) {
    let mut first = Process::start(
        database,
        &[&["--processing-delay-ms", "3000"][..], mode].concat(),
    )
    .await;
    let key = new_key();
    let cut = {
        let (base, key) = (first.base.clone(), key.clone());
        tokio::spawn(async move { pay(&client(), &base, &key).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();
    assert!(matches!(cut.await.unwrap(), Got::NoAnswer(_)));

    let second = Process::start(database, mode).await;
    let started = Instant::now();
    let retry = pay(&client(), &second.base, &key).await;
    let took = started.elapsed();
    // Wait out the lease of the lease mode, then count the payments.
    let last = retry_until_final(&second.base, &key).await;
    let status = |got: &Got| match got {
        Got::Answer { status, .. } => status.to_string(),
        Got::NoAnswer(_) => "no answer".to_owned(),
    };
    eprintln!(
        "first retry: {} after {took:?}; final answer {} {:?} after the restart",
        status(&retry),
        status(&last),
        started.elapsed()
    );
    assert!(matches!(last, Got::Answer { status: 201, .. }), "{last:?}");
    let listed: Vec<Value> = client()
        .get(format!("{}/payments", second.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let made = listed
        .iter()
        .filter(|p| p["idempotency_key"] == key.as_str())
        .count();
    (retry, took, made)
}

/// Retries until the answer is not a 409 (at most 30 s).
async fn retry_until_final(base: &str, key: &str) -> Got {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = pay(&client(), base, key).await;
        match got {
            Got::Answer { status: 409, .. } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_one_transaction_a_killed_payment_leaves_nothing_and_its_retry_pays_once() {
    let dir = tempfile::tempdir().unwrap();
    killed_in_one_transaction(&dir.path().join("tx.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_killed_payment_leaves_nothing_and_its_retry_pays_once() {
    killed_on_a_server(Server::Postgres, "crash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_mysql_a_killed_payment_leaves_nothing_and_its_retry_pays_once() {
    killed_on_a_server(Server::Mysql, "crash").await;
}

/// [`killed_in_one_transaction`] in a fresh database on `server` (its URL
/// is the `--database`).
async fn killed_on_a_server(server: Server, test: &str) {
    let Some(db) = Fresh::new(server, test).await else {
        return;
    };
    killed_in_one_transaction(Path::new(&db.url)).await;
    db.drop().await;
}

/// The transactional mode on `database`: the killed payment left nothing,
/// the first retry pays at once, and the key is paid once.
async fn killed_in_one_transaction(database: &Path) {
    let (retry, took, made) = kill_mid_payment(database, &[]).await;
    let Got::Answer {
        status, replayed, ..
    } = &retry
    else {
        panic!("the retry got no answer: {retry:?}");
    };
    assert_eq!(
        (*status, *replayed),
        (201, false),
        "the killed payment's claim survived it: {retry:?}"
    );
    assert!(took < Duration::from_secs(5), "the retry waited {took:?}");
    assert_eq!(made, 1, "the key was paid {made} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_lease_a_killed_payments_claim_holds_the_key_until_the_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("lease.db");
    let store_url = format!("sqlite://{}", database.display());
    let (retry, _, made) = kill_mid_payment(&database, &["--store-url", &store_url]).await;
    assert!(
        matches!(retry, Got::Answer { status: 409, .. }),
        "the lease mode keeps the dead run's claim: {retry:?}"
    );
    assert_eq!(made, 1, "the key was paid {made} times");
}
