//! `GET /metrics` after real traffic: a fresh payment, its replay, a `409`
//! and a `422`, each counted once.
//!
//! The Prometheus recorder is process-wide, so this file holds one test:
//! no other test in its process adds to the counts.

mod support;

use std::time::Duration;

use support::{alice, http, new_key, pay, replayed, start_lease};

/// The value of the series `name{labels}` (labels as the exporter writes
/// them), or `None` if the page has no such line.
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("a number"))
        })
}

async fn scrape(url: &str) -> String {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_a_fresh_payment_a_replay_a_409_and_a_422() {
    // The lease mode: the duplicate of a running payment gets 409 at once.
    let demo = start_lease(|c| c.processing_delay_ms = 1500).await;
    let metrics = demo.url("/metrics");
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
        })
    };
    // Once the first request's claim is done (its duration is recorded
    // when the store answers), the duplicate meets it in progress.
    let claims = r#"idem_store_duration_seconds_count{operation="claim",backend="sqlite"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = scrape(&metrics).await;
        if value(&page, claims) == Some(1.0) {
            assert_eq!(value(&page, "idem_requests_in_flight"), Some(1.0), "{page}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no claim:\n{page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let conflict = pay(&demo, &key, &alice()).await;
    assert_eq!(conflict.status(), 409);
    let first = first.await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(!replayed(&first));

    let replay = pay(&demo, &key, &alice()).await;
    assert_eq!(replay.status(), 201);
    assert!(replayed(&replay));
    let mut other = alice();
    other["amount"] = 5.into();
    let mismatch = pay(&demo, &key, &other).await;
    assert_eq!(mismatch.status(), 422);
    assert_eq!(demo.payment_rows().await, 1);

    let page = scrape(&metrics).await;
    let requests = |outcome: &str| {
        value(
            &page,
            &format!(r#"idem_requests_total{{outcome="{outcome}"}}"#),
        )
    };
    assert_eq!(requests("executed"), Some(1.0), "{page}");
    assert_eq!(requests("replayed"), Some(1.0), "{page}");
    assert_eq!(requests("in_flight"), Some(1.0), "{page}");
    assert_eq!(requests("mismatch"), Some(1.0), "{page}");
    for none in ["rejected", "store_error", "released", "completion_lost"] {
        assert_eq!(requests(none), None, "{none}: {page}");
    }
    assert_eq!(value(&page, "idem_requests_in_flight"), Some(0.0), "{page}");
    // Four claims (one took the key, three met its record), one complete.
    assert_eq!(value(&page, claims), Some(4.0), "{page}");
    let completes = r#"idem_store_duration_seconds_count{operation="complete",backend="sqlite"}"#;
    assert_eq!(value(&page, completes), Some(1.0), "{page}");
    let buckets =
        r#"idem_store_duration_seconds_bucket{operation="claim",backend="sqlite",le="+Inf"}"#;
    assert_eq!(value(&page, buckets), Some(4.0), "{page}");
    assert!(
        page.contains("# TYPE idem_requests_total counter"),
        "{page}"
    );
    assert!(page.contains("# HELP idem_requests_total"), "{page}");
}
