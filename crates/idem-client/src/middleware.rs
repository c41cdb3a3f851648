//! The middleware: one key per call, the same key on every attempt.

use std::time::Instant;

use http::{Extensions, HeaderValue, Method};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};

use crate::RetryPolicy;
use crate::classify::{retry_after, retryable_error, retryable_response, safe_to_repeat};

/// The header that carries the key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What the middleware did for one call, put in the response's extensions.
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = idem_client::client(reqwest::Client::new());
/// let response = client.post("http://127.0.0.1:8080/payments").send().await?;
/// if let Some(report) = response.extensions().get::<idem_client::CallReport>() {
///     println!("{} attempts with key {:?}", report.attempts, report.key);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    /// How many times the request was sent (1 when the first attempt was final).
    pub attempts: u32,
    /// The idempotency key every attempt carried, if any.
    pub key: Option<String>,
}

/// A [`reqwest_middleware::Middleware`] that makes calls safe to retry, and
/// retries them.
///
/// - Adds `Idempotency-Key: <random UUID v4>` to POST and PATCH requests
///   (configurable) unless the caller set one; the caller's own key is kept.
/// - Sends the request again, with the same key, after a connect error, a
///   timeout, a connection lost before the response, or a 502, 503, 504, 409
///   or 429 answer, waiting as the [`RetryPolicy`] says and as long as the
///   server's `Retry-After` asks (up to a cap). Never after any other 4xx.
/// - Only requests that carry a key or whose method is idempotent (GET, PUT,
///   DELETE, ...) are repeated; a request whose body cannot be cloned (a
///   stream) is sent once.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_client::{IdempotentRetry, RetryPolicy};
/// let middleware = IdempotentRetry::new(RetryPolicy::default().with_max_attempts(4));
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(middleware)
///     .build();
/// # let _ = client;
/// ```
#[derive(Debug, Clone)]
pub struct IdempotentRetry {
    policy: RetryPolicy,
    methods: Vec<Method>,
}

impl Default for IdempotentRetry {
    fn default() -> Self {
        Self::new(RetryPolicy::default())
    }
}

impl IdempotentRetry {
    /// The middleware with `policy`, adding keys to POST and PATCH.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            methods: vec![Method::POST, Method::PATCH],
        }
    }

    /// The methods that get a key when the caller did not set one.
    pub fn with_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    fn ensure_key(&self, req: &mut Request) -> Option<String> {
        if let Some(existing) = req.headers().get(IDEMPOTENCY_KEY) {
            return Some(String::from_utf8_lossy(existing.as_bytes()).into_owned());
        }
        if !self.methods.contains(req.method()) {
            return None;
        }
        let key = uuid::Uuid::new_v4().to_string();
        let value = HeaderValue::from_str(&key).expect("a UUID is a valid header value");
        req.headers_mut().insert(IDEMPOTENCY_KEY, value);
        Some(key)
    }
}

#[async_trait::async_trait]
impl Middleware for IdempotentRetry {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let started = Instant::now();
        let key = self.ensure_key(&mut req);
        let report = |attempts| CallReport {
            attempts,
            key: key.clone(),
        };
        if !safe_to_repeat(req.method(), key.is_some()) {
            return with_report(next.run(req, extensions).await, report(1));
        }
        let mut attempt = 1;
        loop {
            // A body that cannot be cloned (a stream) can be sent only once.
            let Some(this_try) = req.try_clone() else {
                return with_report(next.run(req, extensions).await, report(attempt));
            };
            let result = next.clone().run(this_try, extensions).await;
            let (retry, server_wait) = match &result {
                Ok(response) => (
                    retryable_response(response.status(), response.headers()),
                    retry_after(response.headers()),
                ),
                Err(error) => (retryable_error(error), None),
            };
            if !retry || attempt >= self.policy.max_attempts() {
                return with_report(result, report(attempt));
            }
            let wait = self.policy.wait(attempt, server_wait);
            if started.elapsed() + wait >= self.policy.budget() {
                tracing::debug!(attempt, ?wait, "retry budget spent; giving up");
                return with_report(result, report(attempt));
            }
            tracing::debug!(
                attempt,
                ?wait,
                key = key.as_deref(),
                outcome = %describe(&result),
                "retrying with the same idempotency key"
            );
            drop(result);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

fn with_report(result: Result<Response>, report: CallReport) -> Result<Response> {
    result.map(|mut response| {
        response.extensions_mut().insert(report);
        response
    })
}

fn describe(result: &Result<Response>) -> String {
    match result {
        Ok(response) => response.status().to_string(),
        Err(error) => error.to_string(),
    }
}
