//! The server side of `cargo xtask bench`: one axum server on loopback with
//! the same handler three times, bare (`/bare`), and behind the idempotency
//! layer on the memory store (`/fresh` for new keys, `/replay` for one key).
//!
//! A fourth route, `/fresh-ref`, is a diagnostic: the same layer on a plain
//! `Mutex<HashMap>` store (`idem_conformance::doubles::ReferenceStore`), to
//! tell the layer's cost from the memory store's. The targets are judged on `/fresh`, never on it.
//!
//! Prints `listening http://ADDR` once it accepts connections; when its stdin
//! closes it prints the layer's counters (`metrics ...`) and exits. Run it
//! pinned to one core (`taskset -c 0`); the runtime has one worker thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use idem_conformance::doubles::ReferenceStore;
use idem_tower::IdempotencyLayer;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// The benchmark's handler: validates a payment and answers `201` with it.
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

fn main() -> std::io::Result<()> {
    let runtime = match std::env::var("IDEM_BENCH_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?,
    };
    runtime.block_on(serve())
}

async fn serve() -> std::io::Result<()> {
    let store = Arc::new(idem_memory::MemoryStore::new());
    let layer = IdempotencyLayer::new(store);
    let ids = Arc::new(AtomicU64::new(1));
    let idempotent = Router::new()
        .route("/fresh", post(create))
        .route("/replay", post(create))
        .route_layer(layer.clone());
    let reference = Router::new()
        .route("/fresh-ref", post(create))
        .route_layer(IdempotencyLayer::new(Arc::new(ReferenceStore::new())));
    let app = Router::new()
        .route("/bare", post(create))
        .merge(idempotent)
        .merge(reference)
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
        .await?;
    println!("metrics {:?}", layer.metrics().snapshot());
    Ok(())
}
