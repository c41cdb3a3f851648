//! The transactional mode behind the tower layer: an axum handler takes
//! `IdempotentTx` and writes through it; the layer commits the writes with
//! the kept response, or rolls everything back.
#![cfg(all(feature = "sqlite", feature = "axum"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, Uri};
use axum::routing::post;
use idem_sql::{IdempotentTx, SqliteConfig, SqliteStore};
use idem_tower::IdempotencyLayer;
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Runs(Arc<AtomicUsize>);

/// Writes a payment row for the request's key; `?fail` answers 500 after
/// the write.
async fn pay(
    State(runs): State<Runs>,
    headers: HeaderMap,
    uri: Uri,
    mut tx: IdempotentTx<sqlx::Sqlite>,
) -> Result<(StatusCode, String), StatusCode> {
    let n = runs.0.fetch_add(1, Ordering::SeqCst) + 1;
    let key = headers["idempotency-key"].to_str().unwrap();
    sqlx::query("INSERT INTO payments (k) VALUES (?)")
        .bind(key)
        .execute(&mut *tx)
        .await
        .unwrap();
    if uri.query() == Some("fail") {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Ok((StatusCode::CREATED, format!("payment {n}")))
}

/// Asks for a transaction on a route the layer does not cover.
async fn uncovered(State(runs): State<Runs>, _tx: IdempotentTx<sqlx::Sqlite>) -> StatusCode {
    runs.0.fetch_add(1, Ordering::SeqCst);
    StatusCode::CREATED
}

struct App {
    router: Router,
    store: SqliteStore,
    runs: Runs,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig::file(dir.path().join("app.db")).with_max_connections(8);
    let store = SqliteStore::connect(config).await.unwrap();
    sqlx::query("CREATE TABLE payments (k TEXT NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    let layer = IdempotencyLayer::from_engine(store.transactional()).with_key_required(true);
    let runs = Runs::default();
    let router = Router::new()
        .route("/payments", post(pay))
        .route_layer(layer)
        .route("/uncovered", post(uncovered))
        .with_state(runs.clone());
    App {
        router,
        store,
        runs,
        _dir: dir,
    }
}

fn request(uri: &str, key: &str) -> Request<Body> {
    Request::post(uri)
        .header("idempotency-key", key)
        .body(Body::from("{}"))
        .unwrap()
}

impl App {
    async fn send(&self, uri: &str, key: &str) -> (StatusCode, bool, String) {
        let response = self
            .router
            .clone()
            .oneshot(request(uri, key))
            .await
            .unwrap();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            replayed,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    async fn rows(&self, key: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE k = ?")
            .bind(key)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    fn runs(&self) -> usize {
        self.runs.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_kept_response_commits_with_the_handlers_write_and_replays() {
    let app = app().await;
    let first = app.send("/payments", "k1").await;
    assert_eq!(
        (first.0, first.1),
        (StatusCode::CREATED, false),
        "{first:?}"
    );
    assert_eq!(app.rows("k1").await, 1);
    let retry = app.send("/payments", "k1").await;
    assert_eq!(
        retry,
        (StatusCode::CREATED, true, first.2),
        "a retry must replay"
    );
    assert_eq!(app.runs(), 1);
    assert_eq!(app.rows("k1").await, 1, "a replay wrote a row");
}

#[tokio::test]
async fn a_5xx_rolls_back_the_write_and_the_claim() {
    let app = app().await;
    let failed = app.send("/payments?fail", "k2").await;
    assert_eq!(failed.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(app.rows("k2").await, 0, "a failed payment left its row");
    let retry = app.send("/payments?fail", "k2").await;
    assert_eq!(app.runs(), 2, "the key was not released: {retry:?}");
    assert_eq!(app.rows("k2").await, 0);
}

#[tokio::test]
async fn an_uncovered_route_refuses_the_extractor_and_never_runs() {
    let app = app().await;
    let answer = app.send("/uncovered", "k3").await;
    assert_eq!(answer.0, StatusCode::INTERNAL_SERVER_ERROR, "{answer:?}");
    assert!(answer.2.contains("IdempotentTx"), "{answer:?}");
    assert_eq!(app.runs(), 0, "the handler ran without a transaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_duplicates_write_one_row() {
    let app = Arc::new(app().await);
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let app = app.clone();
        racers.spawn(async move { app.send("/payments", "k4").await });
    }
    let mut fresh = 0;
    while let Some(answer) = racers.join_next().await {
        let (status, replayed, _) = answer.unwrap();
        match (status, replayed) {
            (StatusCode::CREATED, false) => fresh += 1,
            (StatusCode::CREATED, true) | (StatusCode::CONFLICT, _) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(fresh, 1);
    assert_eq!(app.runs(), 1);
    assert_eq!(app.rows("k4").await, 1);
}
