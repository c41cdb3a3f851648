//! One covered request with a key: scope, buffer, fingerprint, then the
//! protocol engine around the inner service, and the answer for each outcome.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use idem_core::{
    BoxError, Completion, Engine, Error, Fingerprint, IdempotencyKey, Outcome, Scope, StoreKey,
};
use tower_service::Service;
use tracing::Span;

use crate::body::{BufferError, buffer_request, buffer_response};
use crate::fingerprint::fingerprint;
use crate::layer::Shared;
use crate::metrics::Event;
use crate::problem::{Problem, ProblemKind};
use crate::request_id::request_id;
use crate::response::{from_stored, mark_replayed, to_stored};

/// A covered request with a key: scope, buffer, fingerprint, then the engine
/// on a task of its own.
pub(crate) async fn covered<S, E, ReqBody, ResBody>(
    shared: Arc<Shared<E>>,
    inner: S,
    request: Request<ReqBody>,
    key: IdempotencyKey,
) -> Result<Response<ResBody>, S::Error>
where
    E: Engine,
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body + From<Bytes> + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let config = &shared.config;
    let scope = match &config.scope {
        None => Scope::global(),
        Some(extract) => match extract(&parts).map(Scope::new) {
            Some(Ok(scope)) => scope,
            None => {
                record(&shared, Event::Rejected);
                return Ok(Problem::new(
                    ProblemKind::MissingScope,
                    "no principal was found to scope the Idempotency-Key to",
                )
                .into_response());
            }
            Some(Err(e)) => {
                record(&shared, Event::Rejected);
                return Ok(Problem::new(ProblemKind::InvalidScope, e.to_string()).into_response());
            }
        },
    };
    let body = match buffer_request(&parts.headers, body, config.body_limit).await {
        Ok(body) => body,
        Err(BufferError::TooLarge) => {
            record(&shared, Event::Rejected);
            let detail = format!(
                "the request body is over the {} byte limit for idempotent requests",
                config.body_limit
            );
            return Ok(Problem::new(ProblemKind::BodyTooLarge, detail).into_response());
        }
        Err(BufferError::Unreadable(e)) => {
            record(&shared, Event::Rejected);
            tracing::debug!(error = %e, "idempotency: request body unreadable");
            return Ok(Problem::new(
                ProblemKind::UnreadableBody,
                "the request body could not be read",
            )
            .into_response());
        }
    };
    let fp = fingerprint(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &body,
        config.canonical_json,
    );
    let store_key = config.key_space.key(&scope, &key);
    let request_id = request_id(&parts.headers, &config.request_id_header);
    let request = Request::from_parts(parts, ReqBody::from(body));

    // If the caller drops this future from here on (the client went away), the
    // rest runs on a task of its own (see `ResponseFuture`): a side effect is
    // never cancelled halfway and its result is kept for the retry.
    // Boxed: the engine's future with the handler's inside it is a few KiB,
    // and this one is moved (into its span, its drain entry, its box) before
    // it runs; each move would copy all of it.
    Box::pin(execute(shared, inner, request, store_key, fp, request_id)).await
}

async fn execute<S, E, ReqBody, ResBody>(
    shared: Arc<Shared<E>>,
    inner: S,
    request: Request<ReqBody>,
    key: StoreKey,
    fp: Fingerprint,
    request_id: Option<String>,
) -> Result<Response<ResBody>, S::Error>
where
    E: Engine,
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body + From<Bytes> + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    let mut slot = Some((inner, request));
    let traced = shared
        .engine
        .run_traced(&key, fp, request_id.as_deref(), |lent| {
            let (inner, mut request) = slot.take().expect("the engine runs the handler once");
            // What the engine lends the handler: the lease's signal
            // (`Extension<LeaseSignal>` in axum), or the transaction.
            request.extensions_mut().insert(lent);
            run_handler(&shared, inner, request)
        })
        .await;
    let config = &shared.config;
    let (outcome, original_request_id) = match traced {
        Ok(traced) => (Ok(traced.outcome), traced.original_request_id),
        Err(error) => (Err(error), None),
    };
    match outcome {
        Ok(Outcome::Executed(response)) => {
            record(&shared, Event::Executed);
            response
        }
        // Counted as executed too (the handler ran), and apart: the key was
        // neither kept nor given back.
        Ok(Outcome::Lost(response)) => {
            record(&shared, Event::CompletionLost);
            response
        }
        Ok(Outcome::Released(response)) => {
            record(&shared, Event::Released);
            response
        }
        Ok(Outcome::Replayed(stored)) => {
            record(&shared, Event::Replayed);
            Ok(from_stored(stored))
        }
        Ok(Outcome::ReplayedNotRetained { status }) => {
            record(&shared, Event::Replayed);
            let mut response = Problem::new(
                ProblemKind::ResponseNotRetained,
                format!(
                    "the request with this Idempotency-Key completed with status {status}, \
                     but its response was too large to keep; it will not be run again"
                ),
            )
            .original_status(status)
            .into_response();
            mark_replayed(response.headers_mut());
            Ok(response)
        }
        Ok(Outcome::InFlight { retry_after }) => {
            record(&shared, Event::InFlight);
            Ok(Problem::new(
                ProblemKind::KeyInFlight,
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .retry_after(retry_after)
            .original_request_id(original_request_id)
            .into_response())
        }
        Ok(Outcome::Mismatch) => {
            record(&shared, Event::Mismatch);
            Ok(Problem::new(
                ProblemKind::KeyMismatch,
                "this Idempotency-Key was already used with a different request \
                 (method, path or body)",
            )
            .into_response())
        }
        Err(error) => {
            record(&shared, Event::Error);
            tracing::warn!(%key, error = &error as &(dyn std::error::Error + 'static), "idempotency store failed");
            let store_failed = matches!(error, Error::Unavailable { .. } | Error::Backend { .. });
            if store_failed && config.fail_open {
                if let Some((mut inner, request)) = slot.take() {
                    shared.metrics.record(Event::PassedThrough);
                    return inner.call(request).await;
                }
            }
            let problem = match error {
                Error::Unavailable { .. } => Problem::new(
                    ProblemKind::StoreUnavailable,
                    "the idempotency store is unavailable; retry later",
                ),
                _ => Problem::new(
                    ProblemKind::StoreError,
                    "the idempotency store failed; retry later",
                ),
            };
            Ok(problem.into_response())
        }
    }
}

/// Runs the inner service and buffers its response; decides what to keep.
async fn run_handler<S, E, ReqBody, ResBody>(
    shared: &Shared<E>,
    mut inner: S,
    request: Request<ReqBody>,
) -> (Result<Response<ResBody>, S::Error>, Completion)
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body + From<Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let response = match inner.call(request).await {
        Ok(response) => response,
        Err(e) => return (Err(e), Completion::Release),
    };
    let (parts, body) = response.into_parts();
    let body = match buffer_response(body).await {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, "the handler's response body failed; the key is released");
            let problem = Problem::new(
                ProblemKind::ResponseBodyError,
                "the response body failed while it was produced",
            );
            return (Ok(problem.into_response()), Completion::Release);
        }
    };
    let config = &shared.config;
    let completion = if !(config.keep)(parts.status) {
        Completion::Release
    } else {
        let stored = to_stored(config, &parts, body.clone());
        if stored.size() > config.storage_limit {
            Completion::KeepNotRetained {
                status: parts.status.as_u16(),
            }
        } else {
            Completion::Keep(stored)
        }
    };
    let response = Response::from_parts(parts, ResBody::from(body));
    (Ok(response), completion)
}

fn record<E>(shared: &Shared<E>, event: Event) {
    shared.metrics.record(event);
    Span::current().record("outcome", event.name());
}
