//! The transactional mode when SQL Server is not there or never answers:
//! every run is a typed `Unavailable` within its bound (the operation
//! timeout plus the lock wait), the handler never runs, and behind the tower
//! layer the request gets `503`. The cases against a real server are in the
//! conformance run (`tests/tests/conformance/sql_support/mssql_tx.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use futures::future::join_all;
use idem_conformance::fresh_key;
use idem_conformance::stall::{self, SilentServer};
use idem_core::{Completion, Error, Fingerprint, Outcome, StoredResponse};
use idem_mssql::{MssqlConfig, MssqlStore, Transactional, TxSlot};
use idem_tower::IdempotencyLayer;
use tower::ServiceExt;

const PASSWORD: &str = "Never-Show-Me-42";
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(1000);
const LOCK_WAIT: Duration = Duration::from_millis(300);
/// What a run may take before its claim gives up.
const BOUND: Duration = Duration::from_millis(1300);

fn config(port: u16) -> MssqlConfig {
    MssqlConfig::new("127.0.0.1")
        .with_port(port)
        .with_credentials("sa", PASSWORD)
        .with_trust_server_certificate(true)
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_operation_timeout(OPERATION_TIMEOUT)
        .with_max_connections(2)
}

fn engine(config: MssqlConfig) -> Transactional {
    MssqlStore::connect_lazy(config)
        .unwrap()
        .transactional()
        .with_lock_wait(LOCK_WAIT)
}

fn fp() -> Fingerprint {
    Fingerprint::of_request("POST", "/payments", b"{}")
}

fn assert_unavailable(e: &Error) {
    assert!(
        matches!(
            e,
            Error::Unavailable {
                backend: "mssql",
                ..
            }
        ),
        "expected Unavailable, got {e:?}"
    );
    assert!(e.is_transient());
    assert!(!format!("{e:?} {e}").contains(PASSWORD), "{e:?}");
}

/// One run of `engine` whose handler counts its runs.
async fn run(engine: &Transactional, runs: &AtomicUsize) -> idem_core::Result<Outcome<()>> {
    engine
        .execute(&fresh_key(), fp(), |_tx| async {
            runs.fetch_add(1, Ordering::SeqCst);
            ((), Completion::Keep(StoredResponse::default()))
        })
        .await
}

#[tokio::test]
async fn a_run_on_a_silent_server_is_unavailable_within_its_bound() {
    let silent = SilentServer::start().await.unwrap();
    let runs = AtomicUsize::new(0);
    for migrations in [true, false] {
        let engine = engine(config(silent.port()).with_migrations(migrations));
        let e = stall::unavailable_within(BOUND, "a transactional run", run(&engine, &runs)).await;
        assert_unavailable(&e);
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "a handler ran without a claim"
    );
}

#[tokio::test]
async fn more_runs_than_connections_on_a_silent_server_are_each_unavailable_within_the_bound() {
    let silent = SilentServer::start().await.unwrap();
    let engine = engine(config(silent.port()));
    let runs = AtomicUsize::new(0);
    let crowd =
        (0..8).map(|_| stall::unavailable_within(BOUND, "a crowded run", run(&engine, &runs)));
    for e in join_all(crowd).await {
        assert_unavailable(&e);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_run_against_a_closed_port_is_unavailable_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let engine = engine(config(port));
    let runs = AtomicUsize::new(0);
    let started = Instant::now();
    let e = run(&engine, &runs)
        .await
        .expect_err("nothing listens there");
    assert_unavailable(&e);
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert!(!format!("{engine:?}").contains(PASSWORD));
}

#[tokio::test]
async fn behind_the_tower_layer_a_silent_server_is_a_503_and_the_handler_does_not_run() {
    let silent = SilentServer::start().await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let pay = move |axum::Extension(slot): axum::Extension<TxSlot>| async move {
        counted.fetch_add(1, Ordering::SeqCst);
        let _tx = slot.lend().expect("the layer lends the transaction");
        StatusCode::CREATED
    };
    let layer =
        IdempotencyLayer::from_engine(engine(config(silent.port()))).with_key_required(true);
    let router = Router::new()
        .route("/payments", post(pay))
        .route_layer(layer);
    let request = Request::post("/payments")
        .header("idempotency-key", "k-1")
        .body(Body::from("{}"))
        .unwrap();
    let started = Instant::now();
    let response = tokio::time::timeout(BOUND + stall::SLACK, router.oneshot(request))
        .await
        .expect("the layer answered within the bound")
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() >= CONNECT_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}
