//! Concurrent duplicates and a client that disconnects mid-handler.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use support::{alice, http, new_key, pay, race_one_key, replayed, start, start_lease};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_identical_posts_make_one_payment() {
    let demo = start_lease(|c| c.processing_delay_ms = 300).await;
    let key = new_key();
    let client = http();
    let mut calls = Vec::new();
    for _ in 0..200 {
        let (client, url, key) = (client.clone(), demo.url("/payments"), key.clone());
        calls.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .header("Idempotency-Key", key)
                .json(&alice())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let replay = replayed(&response);
            (status, replay, response.json::<Value>().await.unwrap())
        }));
    }
    let mut fresh = 0;
    let mut conflicts = 0;
    let mut ids = HashSet::new();
    for call in calls {
        let (status, replay, body) = call.await.unwrap();
        match status {
            201 => {
                if !replay {
                    fresh += 1;
                }
                ids.insert(body["id"].as_str().unwrap().to_owned());
            }
            409 => conflicts += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one request ran the handler");
    assert_eq!(ids.len(), 1, "every 201 is the same payment");
    assert!(conflicts > 0, "the duplicates overlapped the first request");
    assert_eq!(demo.payment_rows().await, 1);
    eprintln!("200 concurrent POSTs: 1 executed, {conflicts} got 409, the rest replays");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_disconnects_mid_handler_still_gets_its_result_on_retry() {
    let demo = start(|c| c.processing_delay_ms = 1000).await;
    let key = new_key();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let error = impatient
        .post(demo.url("/payments"))
        .header("Idempotency-Key", &key)
        .json(&alice())
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");

    // The handler goes on without its client and its response is stored.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(demo.payment_rows().await, 1);
    let retry = pay(&demo, &key, &alice()).await;
    assert_eq!(retry.status(), 201);
    assert!(replayed(&retry), "the retry replays the stored response");
    let payment: Value = retry.json().await.unwrap();
    assert_eq!(payment["idempotency_key"], key.as_str());
    assert_eq!(demo.payment_rows().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retrying_client_waits_out_a_409_and_gets_the_replay() {
    let demo = start_lease(|c| c.processing_delay_ms = 800).await;
    let key = new_key();
    let first = {
        let (url, key) = (demo.url("/payments"), key.clone());
        tokio::spawn(async move {
            http()
                .post(url)
                .header("Idempotency-Key", key)
                .json(&alice())
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = idem_client::client_with(
        reqwest::Client::new(),
        idem_client::RetryPolicy::default()
            .with_max_attempts(20)
            .with_max_retry_after(Duration::from_millis(200)),
    );
    let response = client
        .post(demo.url("/payments"))
        .header("Idempotency-Key", &key)
        .json(&alice())
        .send()
        .await
        .unwrap();
    assert_eq!(first.await.unwrap(), 201);
    assert_eq!(response.status(), 201);
    assert!(replayed(&response));
    let report = response
        .extensions()
        .get::<idem_client::CallReport>()
        .cloned()
        .unwrap();
    assert!(report.attempts >= 2, "{report:?}");
    assert_eq!(report.key.as_deref(), Some(key.as_str()));
    assert!(demo.demo.metrics().snapshot().in_flight >= 1);
    assert_eq!(demo.payment_rows().await, 1);
}

/// The default, transactional mode: duplicates of a running payment wait for
/// its transaction, then replay it; one payment row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_one_transaction_duplicates_wait_then_replay() {
    let demo = start(|c| c.processing_delay_ms = 300).await;
    assert!(demo.demo.is_transactional());
    race_one_key(&demo, 50).await;
    assert_eq!(demo.payment_rows().await, 1);
}
