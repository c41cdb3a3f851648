//! `pay`: makes payments through idem-client against a running idem-demo,
//! and checks that every call made exactly one payment, however many times
//! it was sent.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use idem_client::{CallReport, RetryPolicy};
use serde_json::{Value, json};

/// Pays through the retrying client and counts the payments each key made.
#[derive(Debug, Parser)]
#[command(name = "pay", about)]
struct Args {
    /// The demo's base URL.
    #[arg(long, env = "IDEM_DEMO_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How many payments to make, one after the other.
    #[arg(long, default_value_t = 1)]
    payments: u32,
    /// The amount of each payment.
    #[arg(long, default_value = "99.99")]
    amount: String,
    /// The currency.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// The recipient.
    #[arg(long, default_value = "alice@example.com")]
    recipient: String,
    /// Most attempts per payment.
    #[arg(long, default_value_t = 8)]
    max_attempts: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("pay: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<bool> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let policy = RetryPolicy::default()
        .with_max_attempts(args.max_attempts)
        .with_base_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(1))
        .with_budget(Duration::from_secs(30));
    let client = idem_client::client_with(http, policy);
    let base = args.url.trim_end_matches('/');
    let amount: Value =
        serde_json::from_str(&args.amount).unwrap_or_else(|_| Value::String(args.amount.clone()));
    let body = json!({"amount": amount, "currency": args.currency, "recipient": args.recipient});

    let mut all_once = true;
    let mut retried = 0;
    for n in 1..=args.payments {
        let response = client
            .post(format!("{base}/payments"))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let report = response.extensions().get::<CallReport>().cloned();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let payment: Value = response.json().await?;
        let (attempts, key) = match report {
            Some(r) => (r.attempts, r.key.unwrap_or_default()),
            None => (1, String::new()),
        };
        if attempts > 1 {
            retried += 1;
        }
        let id = payment["id"].as_str().unwrap_or("-");
        print!("payment {n}: {status} {id} after {attempts} attempt(s), key {key}");
        if replayed {
            println!(" -> Idempotent-Replayed: true (the retry landed on the replay)");
        } else {
            println!();
        }
        let payments: Vec<Value> = client
            .get(format!("{base}/payments"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let made = payments
            .iter()
            .filter(|p| p["idempotency_key"] == key.as_str())
            .count();
        println!("           payments made with this key: {made}");
        all_once &= made == 1 && status.is_success();
    }
    println!(
        "{} payment(s), {retried} needed a retry; {}",
        args.payments,
        if all_once {
            "every key made exactly one payment"
        } else {
            "SOME KEY DID NOT MAKE EXACTLY ONE PAYMENT"
        }
    );
    Ok(all_once)
}
