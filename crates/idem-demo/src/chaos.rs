//! The chaos option: lose a share of fresh payment responses after the payment
//! was made and its response stored (the frozen checkout page).

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use rand::Rng;
use tower::Service;

use crate::config::ChaosMode;
use crate::page::options::Options;
use crate::problem::Problem;

/// The error that makes the server close a connection without an answer.
#[derive(Debug)]
pub struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("chaos: response dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

/// How many responses were lost, shared by every connection.
#[derive(Debug, Clone)]
pub struct Chaos {
    rate: f64,
    mode: ChaosMode,
    lost: Arc<AtomicU64>,
}

impl Chaos {
    /// Lose `rate` (0.0 to 1.0) of the responses, the `mode` way.
    pub fn new(rate: f64, mode: ChaosMode) -> Self {
        Self {
            rate: rate.clamp(0.0, 1.0),
            mode,
            lost: Arc::default(),
        }
    }

    /// How many responses were lost so far.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Wraps `inner`.
    pub fn wrap<S>(&self, inner: S) -> ChaosService<S> {
        ChaosService {
            inner,
            chaos: self.clone(),
        }
    }
}

/// A service that loses a share of the responses of `S`.
///
/// Only responses to requests with an `Idempotency-Key` that the handler has
/// just produced are lost (not replays, not 5xx): by then the layer has stored
/// the response, so the client's retry lands on the replay. A request with
/// `?lose=true` ([`Options`]) loses its fresh response whatever the rate.
#[derive(Debug, Clone)]
pub struct ChaosService<S> {
    inner: S,
    chaos: Chaos,
}

impl<S, B> Service<Request<B>> for ChaosService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Dropped;
    type Future = BoxFuture<'static, Result<Response, Dropped>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let keyed = req.headers().contains_key("idempotency-key");
        let asked = Options::lose_requested(req.uri());
        let future = self.inner.call(req);
        let chaos = self.chaos.clone();
        Box::pin(async move {
            let Ok(response) = future.await;
            let fresh = !response.headers().contains_key("idempotent-replayed")
                && !response.status().is_server_error();
            if !keyed || !fresh || (chaos.rate <= 0.0 && !asked) {
                return Ok(response);
            }
            // Read the whole body first, so everything the layer does at the
            // end of the body has happened before the response is lost.
            let (parts, body) = response.into_parts();
            let bytes = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return Err(Dropped),
            };
            if !asked && !rand::rng().random_bool(chaos.rate) {
                return Ok(Response::from_parts(parts, Body::from(bytes)));
            }
            chaos.lost.fetch_add(1, Ordering::Relaxed);
            tracing::info!(status = %parts.status, mode = ?chaos.mode, "chaos: losing the response");
            match chaos.mode {
                ChaosMode::Drop => Err(Dropped),
                ChaosMode::BadGateway => Ok(Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "chaos-bad-gateway",
                    "The response was lost on purpose",
                    "the payment was made and stored; retry with the same Idempotency-Key",
                )
                .into_response()),
            }
        })
    }
}
