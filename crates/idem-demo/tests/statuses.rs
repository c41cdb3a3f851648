//! Every status path of the payments API, black-box over HTTP.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{alice, http, new_key, pay, problem, replayed, start, start_lease, start_switchable};

#[tokio::test(flavor = "multi_thread")]
async fn first_post_is_201_and_the_retry_is_a_replay() {
    let demo = start(|_| {}).await;
    let key = new_key();
    let first = pay(&demo, &key, &alice()).await;
    assert_eq!(first.status(), 201);
    assert!(!replayed(&first));
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let payment: Value = first.json().await.unwrap();
    assert_eq!(payment["amount"], "99.99");
    assert_eq!(payment["currency"], "EUR");
    assert_eq!(payment["recipient"], "alice@example.com");
    assert_eq!(
        location,
        format!("/payments/{}", payment["id"].as_str().unwrap())
    );

    // Same key, same payload, keys in another order and other spacing.
    let again = http()
        .post(demo.url("/payments"))
        .header("Idempotency-Key", &key)
        .header("content-type", "application/json")
        .body(r#"{ "recipient":"alice@example.com", "currency":"EUR", "amount":99.99 }"#)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert!(replayed(&again));
    assert_eq!(again.headers()["location"], location.as_str());
    assert_eq!(again.json::<Value>().await.unwrap(), payment);
    assert_eq!(demo.payment_rows().await, 1);

    let shown: Value = http()
        .get(demo.url(&location))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, payment);
    let all: Vec<Value> = demo.listed().await;
    assert_eq!(all, vec![payment]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_keys_are_400() {
    let demo = start(|_| {}).await;
    let missing = http()
        .post(demo.url("/payments"))
        .json(&alice())
        .send()
        .await
        .unwrap();
    problem(missing, 400).await;
    for key in ["k".repeat(256), "\"unterminated".to_owned(), String::new()] {
        let response = pay(&demo, &key, &alice()).await;
        problem(response, 400).await;
    }
    let non_ascii = http()
        .post(demo.url("/payments"))
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .json(&alice())
        .send()
        .await
        .unwrap();
    problem(non_ascii, 400).await;
    assert_eq!(demo.payment_rows().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_400_or_422_naming_the_field() {
    let demo = start(|_| {}).await;
    let malformed = http()
        .post(demo.url("/payments"))
        .header("Idempotency-Key", new_key())
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(malformed, 400).await;

    for (body, field) in [
        (
            json!({"amount": 0, "currency": "EUR", "recipient": "a@b.io"}),
            "amount",
        ),
        (
            json!({"amount": 1.005, "currency": "EUR", "recipient": "a@b.io"}),
            "amount",
        ),
        (
            json!({"amount": "lots", "currency": "EUR", "recipient": "a@b.io"}),
            "amount",
        ),
        (
            json!({"amount": 1, "currency": "euro", "recipient": "a@b.io"}),
            "currency",
        ),
        (
            json!({"amount": 1, "currency": "EUR", "recipient": "bob"}),
            "recipient",
        ),
        (json!({"amount": 1, "currency": "EUR"}), "recipient"),
    ] {
        let doc = problem(pay(&demo, &new_key(), &body).await, 422).await;
        assert_eq!(doc["errors"][0]["field"], field, "{body}");
        assert!(doc["detail"].as_str().unwrap().contains(field));
    }
    assert_eq!(demo.payment_rows().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn same_key_other_payload_is_422() {
    let demo = start(|_| {}).await;
    let key = new_key();
    assert_eq!(pay(&demo, &key, &alice()).await.status(), 201);
    let other = json!({"amount": 100, "currency": "EUR", "recipient": "alice@example.com"});
    let doc = problem(pay(&demo, &key, &other).await, 422).await;
    assert!(
        doc["type"].as_str().unwrap().ends_with("key-mismatch"),
        "{doc}"
    );
    assert_eq!(demo.payment_rows().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn same_key_while_in_flight_is_409_with_retry_after() {
    // The lease mode answers at once; the transactional one after its lock
    // wait (2 s), so its payment takes longer than that.
    for transactional in [false, true] {
        let demo = if transactional {
            start(|c| c.processing_delay_ms = 3000).await
        } else {
            start_lease(|c| c.processing_delay_ms = 1000).await
        };
        in_flight_is_409(&demo).await;
    }
}

async fn in_flight_is_409(demo: &support::Running) {
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = pay(demo, &key, &alice()).await;
    assert!(second.headers().contains_key("retry-after"));
    problem(second, 409).await;
    assert_eq!(first.await.unwrap().status(), 201);
    let third = pay(demo, &key, &alice()).await;
    assert!(replayed(&third));
    assert_eq!(demo.payment_rows().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_limit_is_413() {
    let demo = start(|_| {}).await;
    let big = json!({"amount": 1, "currency": "EUR", "recipient": "a".repeat(idem_demo::app::BODY_LIMIT + 1)});
    problem(pay(&demo, &new_key(), &big).await, 413).await;
    assert_eq!(demo.payment_rows().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn store_down_is_503_and_no_payment_is_made() {
    let (demo, switch) = start_switchable(|_| {}).await;
    let key = new_key();
    switch.set_down(true);
    problem(pay(&demo, &key, &alice()).await, 503).await;
    assert_eq!(demo.payment_rows().await, 0);
    // Reads do not need the store.
    assert_eq!(
        http()
            .get(demo.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    switch.set_down(false);
    assert_eq!(pay(&demo, &key, &alice()).await.status(), 201);
    assert_eq!(demo.payment_rows().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_are_scopes() {
    let demo = start(|_| {}).await;
    let key = new_key();
    let mut ids = Vec::new();
    for account in ["alice-shop", "bob-shop"] {
        let response = http()
            .post(demo.url("/payments"))
            .header("Idempotency-Key", &key)
            .header("X-Account", account)
            .json(&alice())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert!(
            !replayed(&response),
            "{account} saw another account's payment"
        );
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(demo.payment_rows().await, 2);
    let other = http()
        .get(demo.url(&format!("/payments/{}", ids[0].as_str().unwrap())))
        .header("X-Account", "bob-shop")
        .send()
        .await
        .unwrap();
    problem(other, 404).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_unknown_routes() {
    let demo = start(|_| {}).await;
    let health: Value = http()
        .get(demo.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    problem(http().get(demo.url("/nope")).send().await.unwrap(), 404).await;
    problem(
        http()
            .get(demo.url("/payments/pay_missing"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}
