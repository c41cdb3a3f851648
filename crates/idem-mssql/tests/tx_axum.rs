//! `IdempotentTx` as an axum extractor (feature `axum`), without a server:
//! on a route the transactional layer does not cover it is a `500` and the
//! handler does not run; `Option<IdempotentTx>` is `None` there; on a
//! covered route with a silent server the layer answers `503` before the
//! handler. The cases with a server are in the conformance run.
#![cfg(feature = "axum")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use idem_conformance::stall::{self, SilentServer};
use idem_mssql::{IdempotentTx, MssqlConfig, MssqlStore};
use idem_tower::IdempotencyLayer;
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

async fn pay(State(runs): State<Runs>, _tx: IdempotentTx) -> StatusCode {
    runs.0.fetch_add(1, Ordering::SeqCst);
    StatusCode::CREATED
}

async fn maybe(State(runs): State<Runs>, tx: Option<IdempotentTx>) -> StatusCode {
    runs.0.fetch_add(1, Ordering::SeqCst);
    match tx {
        Some(_) => StatusCode::CREATED,
        None => StatusCode::ACCEPTED,
    }
}

fn router(silent: &SilentServer, runs: &Runs) -> Router {
    let config = MssqlConfig::new("127.0.0.1")
        .with_port(silent.port())
        .with_credentials("sa", "unused")
        .with_connect_timeout(Duration::from_millis(300))
        .with_operation_timeout(Duration::from_millis(800));
    let engine = MssqlStore::connect_lazy(config)
        .unwrap()
        .transactional()
        .with_lock_wait(Duration::from_millis(200));
    let layer = IdempotencyLayer::from_engine(engine).with_key_required(true);
    Router::new()
        .route("/payments", post(pay))
        .route_layer(layer)
        .route("/uncovered", post(pay))
        .route("/maybe", post(maybe))
        .with_state(runs.clone())
}

fn post_to(path: &str) -> Request<Body> {
    Request::post(path)
        .header("idempotency-key", "k-1")
        .body(Body::from("{}"))
        .unwrap()
}

#[tokio::test]
async fn a_route_without_the_layer_is_a_500_and_the_handler_does_not_run() {
    let silent = SilentServer::start().await.unwrap();
    let runs = Runs::default();
    let response = router(&silent, &runs)
        .oneshot(post_to("/uncovered"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("no transactional idempotency layer"),
        "{body}"
    );
    assert_eq!(runs.count(), 0);
}

#[tokio::test]
async fn an_optional_transaction_is_none_without_the_layer() {
    let silent = SilentServer::start().await.unwrap();
    let runs = Runs::default();
    let response = router(&silent, &runs)
        .oneshot(post_to("/maybe"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(runs.count(), 1);
}

#[tokio::test]
async fn a_covered_route_on_a_silent_server_is_a_503_before_the_handler() {
    let silent = SilentServer::start().await.unwrap();
    let runs = Runs::default();
    let answer = router(&silent, &runs).oneshot(post_to("/payments"));
    let bound = Duration::from_millis(1000) + stall::SLACK;
    let response = tokio::time::timeout(bound, answer)
        .await
        .expect("answered within the operation timeout and the lock wait")
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(runs.count(), 0);
}
