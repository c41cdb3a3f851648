//! The server side of `cargo xtask bench`: one axum server on loopback with
//! the same handler three times, bare (`/bare`), and behind the idempotency
//! layer on the memory store (`/fresh` for new keys, `/replay` for one key).
//!
//! A fourth route, `/fresh-ref`, is a diagnostic: the same layer on a plain
//! `Mutex<HashMap>` store (`idem_conformance::doubles::ReferenceStore`), to
//! tell the layer's cost from the memory store's. The targets are judged on `/fresh`, never on it.
//!
//! With `IDEM_BENCH_STORE` set to a store URL (`redis://...`,
//! `postgres://...`; `cargo xtask bench --stores` sets it), `/fresh` and
//! `/replay` run over that store instead, built by the `idem` facade's
//! [`StoreConfig`] with its defaults (pool size included), and a
//! `/replay-tier` route runs over the memory tier ([`CachedStore`], default
//! [`TierConfig`]) in front of the same store; there is no `/fresh-ref`.
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
use idem::{CachedStore, StoreConfig, TierConfig};
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
    let ids = Arc::new(AtomicU64::new(1));
    let (app, layers) = match std::env::var("IDEM_BENCH_STORE") {
        Ok(url) if !url.is_empty() => over_store(&url, ids).await?,
        _ => over_memory(ids),
    };
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
    for (name, layer) in layers {
        println!("metrics {name}{:?}", layer.metrics().snapshot());
    }
    Ok(())
}

/// The routes on the memory store, and the `Mutex<HashMap>` reference.
fn over_memory(ids: Arc<AtomicU64>) -> (Router, Vec<(&'static str, IdempotencyLayer)>) {
    let store = Arc::new(idem_memory::MemoryStore::new());
    let layer = IdempotencyLayer::new(store);
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
    (app, vec![("", layer)])
}

/// The routes on the store `url` names, and on the memory tier in front of
/// that same store (`/replay-tier`).
async fn over_store(
    url: &str,
    ids: Arc<AtomicU64>,
) -> std::io::Result<(Router, Vec<(&'static str, IdempotencyLayer)>)> {
    let store = StoreConfig::from_url(url)
        .connect()
        .await
        .map_err(std::io::Error::other)?;
    let layer = IdempotencyLayer::new(store.clone());
    let tiered = IdempotencyLayer::new(Arc::new(CachedStore::new(store, TierConfig::default())));
    let idempotent = Router::new()
        .route("/fresh", post(create))
        .route("/replay", post(create))
        .route_layer(layer.clone());
    let tier = Router::new()
        .route("/replay-tier", post(create))
        .route_layer(tiered.clone());
    let app = Router::new()
        .route("/bare", post(create))
        .merge(idempotent)
        .merge(tier)
        .with_state(ids);
    Ok((app, vec![("", layer), ("(tier) ", tiered)]))
}
