//! The `idem-demo` binary drains on SIGTERM: under load it exits 0 in time,
//! every payment under way is finished and stored, and a second process on
//! the same database replays them without making any payment twice.

#![cfg(unix)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use support::new_key;
use support::process::{Got, Process, client, pay};

const DRAINING: &str = "https://idem.dev/problems/draining";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_no_payment_and_no_retry_pays_twice() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("drain.db");
    let drain_timeout = Duration::from_secs(10);
    // The lease mode (records through the store URL, payments apart): in the
    // default transactional mode, SQLite's one writer would run these
    // second-long payments one at a time, and most would get 409.
    let store_url = format!("sqlite://{}", database.display());
    let first = Process::start(
        &database,
        &[
            "--processing-delay-ms",
            "1000",
            "--drain-timeout",
            "10s",
            "--store-url",
            &store_url,
        ],
    )
    .await;

    // 50 payments over a second, each taking a second; SIGTERM at 0.4 s.
    let client = client();
    let keys: Vec<String> = (0..50).map(|_| new_key()).collect();
    let calls: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let (client, base, key) = (client.clone(), first.base.clone(), key.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
                pay(&client, &base, &key).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let printed = first.stop(drain_timeout + Duration::from_secs(5)).await;

    let mut got = HashMap::new();
    let (mut paid, mut turned_away, mut no_answer) = (0, 0, Vec::new());
    for (key, call) in keys.iter().zip(calls) {
        let answer = call.await.unwrap();
        match &answer {
            Got::Answer {
                status: 201,
                replayed: false,
                ..
            } => paid += 1,
            Got::Answer {
                status: 503,
                retry_after,
                body,
                ..
            } => {
                assert_eq!(body["type"], DRAINING, "{body}");
                assert!(retry_after.is_some(), "503 without Retry-After");
                turned_away += 1;
            }
            Got::NoAnswer(error) => no_answer.push(error.clone()),
            other => panic!("{key}: unexpected {other:?}"),
        }
        got.insert(key.clone(), answer);
    }
    eprintln!(
        "SIGTERM under load: {paid} paid, {turned_away} got 503, {} no answer {:?}",
        no_answer.len(),
        no_answer.first()
    );
    assert!(paid > 0, "payments were under way at the SIGTERM");
    assert!(turned_away > 0, "payments arrived while it drained");
    let summary = printed
        .iter()
        .find(|l| l.starts_with("idem-demo: stopped;"))
        .unwrap_or_else(|| panic!("no summary in {printed:#?}"));
    assert!(
        summary.contains(&format!("executed {paid},"))
            && summary.ends_with(&format!("turned away while draining {turned_away}")),
        "{summary}"
    );
    assert!(
        !printed.iter().any(|l| l.contains("abandoned")),
        "{printed:#?}"
    );

    // A second process on the same database: every retry replays or pays once.
    let second = Process::start(&database, &["--store-url", &store_url]).await;
    let client = self::client();
    for key in &keys {
        let retry = pay(&client, &second.base, key).await;
        let Got::Answer {
            status,
            replayed,
            body,
            ..
        } = &retry
        else {
            panic!("{key}: the retry got no answer: {retry:?}");
        };
        // 200 would be the table's unique constraint catching a second run.
        assert_eq!(*status, 201, "{key}: {body}");
        if let Got::Answer {
            status: 201,
            body: before,
            ..
        } = &got[key]
        {
            assert!(*replayed, "{key}: paid before, so the retry replays");
            assert_eq!(body, before, "{key}: the same payment");
        }
    }
    let listed: Vec<Value> = client
        .get(format!("{}/payments", second.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for payment in &listed {
        *per_key
            .entry(payment["idempotency_key"].as_str().unwrap())
            .or_default() += 1;
    }
    for key in &keys {
        assert_eq!(per_key.get(key.as_str()), Some(&1), "{key}: one payment");
    }
    assert_eq!(listed.len(), keys.len(), "no other payment");
    second.stop(drain_timeout).await;
}
