//! The checkout page's side of the API, over HTTP: the page and its files,
//! CORS, and the per-request options `slow` and `lose`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{alice, http, new_key, pay, problem, replayed, start, start_lease};

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_files_are_served() {
    let demo = start(|_| {}).await;
    for (path, content_type, needle) in [
        ("/", "text/html; charset=utf-8", "Idempotency-Key"),
        ("/style.css", "text/css; charset=utf-8", "#answers"),
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            "Idempotent-Replayed",
        ),
    ] {
        let response = http().get(demo.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(response.text().await.unwrap().contains(needle), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_lets_other_origins_send_the_key_and_read_the_replay() {
    let demo = start(|_| {}).await;
    let preflight = http()
        .request(reqwest::Method::OPTIONS, demo.url("/payments"))
        .header("Origin", "https://shop.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,idempotency-key,x-account",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in ["idempotency-key", "content-type", "x-account"] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(demo.payment_rows().await, 0, "a preflight pays nothing");

    let key = new_key();
    let mut exposed = Vec::new();
    for _ in 0..2 {
        let response = http()
            .post(demo.url("/payments"))
            .header("Origin", "https://shop.example")
            .header("Idempotency-Key", &key)
            .json(&alice())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        exposed.push(replayed(&response));
        let expose = response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for name in ["idempotent-replayed", "retry-after"] {
            assert!(expose.contains(name), "{name} in {expose}");
        }
    }
    assert_eq!(exposed, [false, true]);
}

async fn pay_at(demo: &support::Running, query: &str, key: &str) -> reqwest::Response {
    http()
        .post(demo.url(&format!("/payments?{query}")))
        .header("Idempotency-Key", key)
        .json(&alice())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn absurd_options_are_refused_with_a_problem() {
    let demo = start(|_| {}).await;
    for query in [
        "slow=3600",
        "slow=-1",
        "slow=abc",
        "slow=99999999999999999999999999",
        "slow=1&slow=2",
        "lose=yes",
    ] {
        let doc = problem(pay_at(&demo, query, &new_key()).await, 400).await;
        assert_eq!(
            doc["type"], "https://idem.dev/problems/demo/invalid-option",
            "{query}"
        );
        assert!(doc["detail"].as_str().unwrap().contains('`'), "{doc}");
    }
    assert_eq!(demo.payment_rows().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_holds_the_answer_and_a_duplicate_meets_it_in_flight() {
    let demo = start_lease(|_| {}).await;
    let key = new_key();
    let started = Instant::now();
    let first = {
        let demo_url = demo.url("/payments?slow=2");
        let key = key.clone();
        tokio::spawn(async move {
            http()
                .post(demo_url)
                .header("Idempotency-Key", key)
                .json(&alice())
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let duplicate = pay_at(&demo, "slow=2", &key).await;
    assert_eq!(duplicate.status(), 409);
    assert!(duplicate.headers().contains_key("retry-after"));

    let first = first.await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(!replayed(&first));
    assert!(started.elapsed() >= Duration::from_secs(2), "held 2 s");

    // The option is in the fingerprint: the same key without it is another
    // request; with it, the replay.
    let other = pay(&demo, &key, &alice()).await;
    assert_eq!(other.status(), 422);
    let again = pay_at(&demo, "slow=2", &key).await;
    assert_eq!(again.status(), 201);
    assert!(replayed(&again));
    assert_eq!(demo.payment_rows().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn lose_drops_the_fresh_answer_and_the_retry_gets_the_replay() {
    let demo = start(|_| {}).await;
    let key = new_key();
    let lost = http()
        .post(demo.url("/payments?lose=true"))
        .header("Idempotency-Key", &key)
        .json(&alice())
        .send()
        .await;
    assert!(lost.is_err(), "the fresh answer is lost: {lost:?}");
    assert_eq!(demo.demo.chaos().lost(), 1);
    assert_eq!(demo.payment_rows().await, 1, "the payment was made");

    let retry = pay_at(&demo, "lose=true", &key).await;
    assert_eq!(retry.status(), 201);
    assert!(replayed(&retry), "a replay is never lost");
    let payment: Value = retry.json().await.unwrap();
    assert_eq!(payment["idempotency_key"], key.as_str());
    assert_eq!(demo.demo.chaos().lost(), 1);
    assert_eq!(demo.payment_rows().await, 1);

    // Without the option nothing is lost (the server-wide rate is 0).
    let plain = pay(&demo, &new_key(), &alice()).await;
    assert_eq!(plain.status(), 201);
    assert_eq!(demo.demo.chaos().lost(), 1);
}
