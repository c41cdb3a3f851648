//! The clients: each logical request sent with one key, several copies at
//! once, to random apps, retried with that key until a final answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use reqwest::StatusCode;

use crate::check::Answer;

/// The shape of the load.
#[derive(Debug, Clone)]
pub(super) struct Load {
    /// Logical requests (keys).
    pub keys: usize,
    /// Copies of each sent at once.
    pub copies: usize,
    /// The keys are started evenly over this time.
    pub spread: Duration,
    /// How long one copy keeps trying.
    pub deadline: Duration,
}

/// Sends the load to the apps on `ports`; returns the keys and every
/// copy's answer.
pub(super) async fn send(
    ports: Vec<u16>,
    load: Load,
    prefix: String,
) -> (Vec<String>, Vec<Answer>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .expect("a reqwest client");
    let ports = Arc::new(ports);
    let keys: Vec<String> = (0..load.keys).map(|i| format!("{prefix}-{i}")).collect();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let at = load.spread.mul_f64(i as f64 / load.keys.max(1) as f64);
        for _ in 0..load.copies {
            let (http, ports, key) = (http.clone(), ports.clone(), key.clone());
            let deadline = load.deadline;
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until((start + at).into()).await;
                one(&http, &ports, key, deadline).await
            }));
        }
    }
    let mut answers = Vec::new();
    for task in tasks {
        if let Ok(answer) = task.await {
            answers.push(answer);
        }
    }
    (keys, answers)
}

/// One copy: tries until a final answer or the deadline.
async fn one(http: &reqwest::Client, ports: &[u16], key: String, deadline: Duration) -> Answer {
    let until = Instant::now() + deadline;
    let mut last = String::from("never sent");
    let mut attempt = 0u32;
    while Instant::now() < until {
        attempt += 1;
        let port = ports[rand::rng().random_range(0..ports.len())];
        let sent = http
            .post(format!("http://127.0.0.1:{port}/work"))
            .header("idempotency-key", &key)
            .header("content-type", "application/json")
            .body(r#"{"amount":1}"#)
            .send()
            .await;
        let hint = match sent {
            Err(e) => {
                last = format!("error: {e}");
                None
            }
            Ok(response) => {
                let status = response.status();
                let hint = retry_after(&response);
                let body = response.text().await;
                match (status, body) {
                    (StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE, _) => {
                        last = format!("{status}");
                        hint
                    }
                    (_, Ok(body)) => {
                        return Answer {
                            key,
                            status: Some(status.as_u16()),
                            body,
                        };
                    }
                    (_, Err(e)) => {
                        last = format!("{status}, body lost: {e}");
                        None
                    }
                }
            }
        };
        tokio::time::sleep(backoff(attempt, hint)).await;
    }
    Answer {
        key,
        status: None,
        body: format!("no final answer within {deadline:?}; last: {last}"),
    }
}

/// Exponential backoff with full jitter (50 ms doubling, at most 1 s), and
/// never less than the server's `Retry-After`, capped at [`MAX_PAUSE`].
fn backoff(attempt: u32, hint: Option<Duration>) -> Duration {
    let ceiling = (50u64 << attempt.min(5)).min(MAX_PAUSE.as_millis() as u64);
    let jittered = Duration::from_millis(rand::rng().random_range(0..=ceiling));
    jittered.max(hint.unwrap_or_default().min(MAX_PAUSE))
}

/// The longest pause between two tries of one copy.
const MAX_PAUSE: Duration = Duration::from_secs(1);

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}
