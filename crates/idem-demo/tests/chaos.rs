//! The retrying client through the chaos option ends with exactly one payment per call.

mod support;

use std::time::Duration;

use idem_client::{CallReport, RetryPolicy};
use idem_demo::config::ChaosMode;
use serde_json::Value;
use support::{alice, replayed, start};

fn client() -> reqwest_middleware::ClientWithMiddleware {
    idem_client::client_with(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        RetryPolicy::default()
            .with_max_attempts(5)
            .with_base_delay(Duration::from_millis(10))
            .with_max_delay(Duration::from_millis(50)),
    )
}

async fn every_lost_response_is_recovered(mode: ChaosMode) {
    // Every fresh response is lost; only a retry can get the payment.
    let demo = start(|c| {
        c.chaos_drop_rate = 1.0;
        c.chaos_mode = mode;
    })
    .await;
    let client = client();
    for n in 1..=3 {
        let response = client
            .post(demo.url("/payments"))
            .json(&alice())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert!(replayed(&response), "the retry landed on the replay");
        let report = response.extensions().get::<CallReport>().cloned().unwrap();
        assert_eq!(report.attempts, 2);
        let payment: Value = response.json().await.unwrap();
        assert_eq!(payment["idempotency_key"], report.key.unwrap().as_str());
        assert_eq!(demo.payment_rows().await, n, "one payment per call");
    }
    assert_eq!(demo.demo.chaos().lost(), 3);
    let metrics = demo.demo.metrics().snapshot();
    assert_eq!((metrics.executed, metrics.replayed), (3, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_connections_land_on_the_replay() {
    every_lost_response_is_recovered(ChaosMode::Drop).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_gateways_land_on_the_replay() {
    every_lost_response_is_recovered(ChaosMode::BadGateway).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_retrying_client_the_response_is_lost() {
    let demo = start(|c| c.chaos_drop_rate = 1.0).await;
    let error = reqwest::Client::new()
        .post(demo.url("/payments"))
        .header("Idempotency-Key", support::new_key())
        .json(&alice())
        .send()
        .await
        .unwrap_err();
    assert!(!error.is_timeout() && !error.is_status(), "{error:?}");
    assert_eq!(
        demo.payment_rows().await,
        1,
        "the payment was made all the same"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pay_binary_reports_one_payment_per_key() {
    let demo = start(|c| c.chaos_drop_rate = 0.5).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pay"))
        .args(["--url", &demo.base, "--payments", "6"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("every key made exactly one payment"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("payments made with this key: 1").count(), 6);
    assert_eq!(demo.payment_rows().await, 6);
    let retried = stdout.matches("Idempotent-Replayed: true").count() as u64;
    assert_eq!(retried, demo.demo.chaos().lost(), "{stdout}");
}
