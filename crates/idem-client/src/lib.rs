#![doc = include_str!("../README.md")]

mod classify;
mod middleware;
mod policy;

pub use middleware::{CallReport, IDEMPOTENCY_KEY, IdempotentRetry};
pub use policy::RetryPolicy;

/// Wraps `client` with [`IdempotentRetry`] and the default [`RetryPolicy`].
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = idem_client::client(reqwest::Client::new());
/// let response = client
///     .post("http://127.0.0.1:8080/payments")
///     .json(&serde_json::json!({"amount": 10, "currency": "EUR", "recipient": "bob@example.com"}))
///     .send()
///     .await?;
/// println!("{}", response.status());
/// # Ok(()) }
/// ```
pub fn client(client: reqwest::Client) -> reqwest_middleware::ClientWithMiddleware {
    client_with(client, RetryPolicy::default())
}

/// Wraps `client` with [`IdempotentRetry`] and `policy`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let client = idem_client::client_with(
///     reqwest::Client::new(),
///     idem_client::RetryPolicy::default().with_budget(Duration::from_secs(5)),
/// );
/// # let _ = client;
/// ```
pub fn client_with(
    client: reqwest::Client,
    policy: RetryPolicy,
) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(client)
        .with(IdempotentRetry::new(policy))
        .build()
}
