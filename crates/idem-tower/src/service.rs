//! [`IdempotencyService`]: the HTTP side of the protocol around an inner service.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use idem_core::{BoxError, Engine, Idempotency};
use tower_service::Service;
use tracing::Instrument;

use crate::exchange::covered;
use crate::future::ResponseFuture;
use crate::key::key_from_headers;
use crate::layer::Shared;
use crate::metrics::Event;
use crate::problem::{Problem, ProblemKind};

/// The service built by [`IdempotencyLayer`](crate::IdempotencyLayer).
///
/// Request and response bodies keep the inner service's types (so it fits
/// `axum::Router::layer` and `route_layer` as is); both must be buildable from
/// [`Bytes`], because a covered request's body is buffered for its fingerprint
/// and a covered response's body is buffered to keep it.
///
/// If the client goes away while a covered request is being handled (its
/// response future is dropped), the exchange moves onto a tokio task of its own:
/// the handler runs to the end and its response is kept, so the retry replays it.
///
/// While the layer's [`Drain`](crate::Drain) is started, a new covered
/// request gets `503` (`draining`); the covered requests it already took on
/// run to the end.
#[derive(Debug, Clone)]
pub struct IdempotencyService<S, E = Idempotency> {
    inner: S,
    shared: Arc<Shared<E>>,
}

impl<S, E> IdempotencyService<S, E> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<E>>) -> Self {
        Self { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, E, ReqBody, ResBody> Service<Request<ReqBody>> for IdempotencyService<S, E>
where
    E: Engine,
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body + From<Bytes> + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let config = &shared.config;
        if !config.methods.contains(request.method()) {
            shared.metrics.record(Event::PassedThrough);
            return ResponseFuture::pass_through(self.inner.call(request));
        }
        let key = key_from_headers(request.headers());
        if matches!(key, Ok(None)) && !config.key_required {
            shared.metrics.record(Event::PassedThrough);
            return ResponseFuture::pass_through(self.inner.call(request));
        }
        // Covered from here on: counted by the drain, or turned away by it.
        let Some(entry) = shared.drain.enter() else {
            return ResponseFuture::ready(draining(shared));
        };
        let key = match key {
            Ok(Some(key)) => key,
            Ok(None) => {
                return ResponseFuture::ready(reject(
                    shared,
                    Problem::new(
                        ProblemKind::MissingKey,
                        "this endpoint requires an Idempotency-Key header",
                    ),
                ));
            }
            Err(e) => {
                return ResponseFuture::ready(reject(
                    shared,
                    Problem::new(ProblemKind::InvalidKey, e.to_string()),
                ));
            }
        };
        // The ready service goes with this request; a fresh clone stays.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let span = tracing::info_span!(
            "idempotency",
            method = %request.method(),
            path = %request.uri().path(),
            outcome = tracing::field::Empty,
        );
        let future = covered(shared.clone(), inner, request, key).instrument(span);
        // The entry goes with the exchange, onto its own task too if the
        // caller drops it: the drain waits until the result is stored.
        ResponseFuture::idempotent(Box::pin(entry.hold(future)))
    }
}

fn draining<B: From<Bytes>, E>(shared: &Shared<E>) -> Response<B> {
    shared.metrics.record(Event::Draining);
    tracing::debug!("idempotency: draining; new covered request turned away");
    Problem::new(
        ProblemKind::Draining,
        "the server is shutting down and takes no new request with an Idempotency-Key; \
         retry with the same key",
    )
    .retry_after(shared.config.drain_retry_after)
    .into_response()
}

fn reject<B: From<Bytes>, E>(shared: &Shared<E>, problem: Problem) -> Response<B> {
    shared.metrics.record(Event::Rejected);
    tracing::debug!(
        problem = problem.kind().slug(),
        "idempotency: request rejected"
    );
    problem.into_response()
}
