//! The peer side of `cargo xtask bench --peers`: the same axum handler as
//! idem's `bench_server`, bare (`/bare`) and behind the `idempotent` crate's
//! memory store (`/fresh`, `/replay`), with the glue its README describes:
//! read the key, fingerprint method, path and body, `try_insert`, run the
//! handler and `complete`, or answer from the existing entry (a replay, `409`
//! while in progress, `422` for another payload).
//!
//! Prints `listening http://ADDR`, exits when stdin closes. The runtime has
//! one worker thread, as idem's server does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::BodyExt;
use idempotent::entry::ExistingEntry;
use idempotent::fingerprint::{DefaultFingerprintStrategy, FingerprintStrategy};
use idempotent::store::memory::MemoryStore;
use idempotent::store::{IdempotencyStore, InsertResult};
use idempotent::{CachedResponse, IdempotencyEntry, IdempotencyKey, Metadata};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

const TTL: Duration = Duration::from_secs(24 * 3600);

async fn create(
    State(next_id): State<Arc<AtomicU64>>,
    Json(payment): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let id = next_id.fetch_add(1, Relaxed);
    (
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "amount": payment["amount"],
            "currency": payment["currency"],
            "recipient": payment["recipient"],
            "status": "accepted",
        })),
    )
}

fn plain(status: StatusCode) -> Response {
    status.into_response()
}

fn replay(response: CachedResponse) -> Response {
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = StatusCode::from_u16(response.status_code).unwrap_or(StatusCode::OK);
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

async fn idempotent(
    State(store): State<Arc<MemoryStore>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| IdempotencyKey::new(v).ok())
    else {
        return plain(StatusCode::BAD_REQUEST);
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|c| c.to_bytes()) else {
        return plain(StatusCode::BAD_REQUEST);
    };
    let operation = format!("{} {}", parts.method, parts.uri.path());
    let fingerprint = DefaultFingerprintStrategy.compute(&operation, &body);
    let entry = IdempotencyEntry::new(fingerprint, TTL);
    let Ok(inserted) = store.try_insert(&key, entry.clone()).await;
    match inserted {
        InsertResult::Exists(ExistingEntry::Completed(done)) => {
            if !done.fingerprint_matches(fingerprint) {
                return plain(StatusCode::UNPROCESSABLE_ENTITY);
            }
            replay(done.into_response())
        }
        InsertResult::Exists(ExistingEntry::Processing(running)) => {
            if running.fingerprint_matches(fingerprint) {
                plain(StatusCode::CONFLICT)
            } else {
                plain(StatusCode::UNPROCESSABLE_ENTITY)
            }
        }
        InsertResult::Claimed { fencing_token } => {
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            let (parts, body) = response.into_parts();
            let body: Bytes = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => {
                    let Ok(()) = store.remove(&key).await;
                    return plain(StatusCode::INTERNAL_SERVER_ERROR);
                }
            };
            let cached = CachedResponse {
                status_code: parts.status.as_u16(),
                metadata: Metadata::default(),
                body: body.clone(),
            };
            let Ok(()) = store
                .complete(&key, entry.complete(cached), fencing_token)
                .await;
            Response::from_parts(parts, Body::from(body))
        }
    }
}

fn main() -> std::io::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(serve())
}

async fn serve() -> std::io::Result<()> {
    let store = Arc::new(MemoryStore::new(1024, Duration::from_secs(60)));
    let ids = Arc::new(AtomicU64::new(1));
    let covered = Router::new()
        .route("/fresh", post(create))
        .route("/replay", post(create))
        .route_layer(middleware::from_fn_with_state(store, idempotent));
    let app = Router::new()
        .route("/bare", post(create))
        .merge(covered)
        .with_state(ids);
    let addr = std::env::var("IDEM_BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening http://{}", listener.local_addr()?);
    let stop = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}
