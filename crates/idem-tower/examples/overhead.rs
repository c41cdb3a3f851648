//! In-process cost of the layer per request, without network: the benchmark's
//! handler bare, with fresh keys, with replays, and the engine alone on the
//! memory store, timed in a loop on one runtime thread. Shows the layer's own
//! overhead apart from HTTP and the kernel; pair it with `perf stat` to count
//! instructions per request (`IDEM_MODE=replay perf stat -e instructions ...`).
//!
//! `IDEM_MODE` = `bare`, `fresh`, `fresh-ref` (on the reference store),
//! `replay`, `engine` (the engine alone on the memory store), `engine-ref`
//! (on the reference store) or `all` (default);
//! `IDEM_N` = requests per mode (default 200 000).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::BodyExt;
use idem_conformance::doubles::ReferenceStore;
use idem_core::{Completion, Fingerprint, Idempotency, StoreKey, StoredResponse};
use idem_tower::IdempotencyLayer;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn create(Json(p): Json<Value>) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({"id": 1, "amount": p["amount"], "currency": p["currency"]})),
    )
}

const BODY: &str = r#"{"amount":"99.99","currency":"EUR","recipient":"alice@example.com"}"#;

async fn time_route(app: &Router, path: &str, n: usize, key: impl Fn(usize) -> String) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .header("idempotency-key", key(i))
            .body(Body::from(BODY))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert!(res.status().is_success());
        let _ = res.into_body().collect().await.unwrap();
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

async fn time_engine(n: usize, store: Arc<dyn idem_core::IdempotencyStore>) -> f64 {
    let engine = Idempotency::new(store);
    let start = Instant::now();
    for i in 0..n {
        let key = StoreKey::parse(format!("idempotency:0::engine-{i}")).unwrap();
        let fp = Fingerprint::of_request("POST", "/fresh", BODY.as_bytes());
        let _ = engine
            .execute(&key, fp, |_| async {
                let r = StoredResponse {
                    status: 201,
                    headers: vec![],
                    body: Bytes::from_static(b"{}"),
                };
                ((), Completion::Keep(r))
            })
            .await
            .unwrap();
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let mode = std::env::var("IDEM_MODE").unwrap_or_else(|_| "all".into());
    let n: usize = std::env::var("IDEM_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Timed on a task of the runtime, as a server's connection task would be.
    let run = rt.spawn(async move {
        let layer = IdempotencyLayer::new(Arc::new(idem_memory::MemoryStore::new()));
        let app = Router::new()
            .route("/bare", post(create))
            .merge(
                Router::new()
                    .route("/fresh", post(create))
                    .route("/replay", post(create))
                    .route_layer(layer),
            )
            .merge(
                Router::new()
                    .route("/fresh-ref", post(create))
                    .route_layer(IdempotencyLayer::new(Arc::new(ReferenceStore::new()))),
            );
        let all = mode == "all";
        if all || mode == "engine" {
            let t = time_engine(n, Arc::new(idem_memory::MemoryStore::new())).await;
            println!("engine alone on the memory store, fresh keys: {t:.2} µs");
        }
        if all || mode == "engine-ref" {
            let t = time_engine(n, Arc::new(ReferenceStore::new())).await;
            println!("engine alone on the reference store, fresh keys: {t:.2} µs");
        }
        if all || mode == "bare" {
            let t = time_route(&app, "/bare", n, |i| format!("k{i}")).await;
            println!("bare: {t:.2} µs/request");
        }
        if all || mode == "fresh" {
            let t = time_route(&app, "/fresh", n, |i| format!("fresh-{i}")).await;
            println!("fresh: {t:.2} µs/request");
        }
        if all || mode == "fresh-ref" {
            let t = time_route(&app, "/fresh-ref", n, |i| format!("fresh-{i}")).await;
            println!("fresh-ref: {t:.2} µs/request");
        }
        if all || mode == "replay" {
            let t = time_route(&app, "/replay", n, |_| "same".into()).await;
            println!("replay: {t:.2} µs/request");
        }
    });
    rt.block_on(run).unwrap();
}
