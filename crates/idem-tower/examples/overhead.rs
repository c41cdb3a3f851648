//! In-process cost of the layer per request (no network): the same axum
//! handler bare, with fresh keys and with replays, timed in a loop. A quick
//! way to see the layer's own overhead apart from HTTP and the kernel.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::BodyExt;
use idem_tower::IdempotencyLayer;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn create(Json(p): Json<Value>) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({"id": 1, "amount": p["amount"]})),
    )
}

const BODY: &str = r#"{"amount":"99.99","currency":"EUR","recipient":"alice@example.com"}"#;

async fn time(app: &Router, path: &str, n: usize, key: impl Fn(usize) -> String) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .header("idempotency-key", key(i))
            .body(Body::from(BODY))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let _ = res.into_body().collect().await.unwrap();
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Timed on a task of the runtime, as a server's connection task would be.
    let run = rt.spawn(async {
        let layer = IdempotencyLayer::new(Arc::new(idem_memory::MemoryStore::new()));
        let app = Router::new().route("/bare", post(create)).merge(
            Router::new()
                .route("/fresh", post(create))
                .route("/replay", post(create))
                .route_layer(layer),
        );
        let engine = idem_core::Idempotency::new(Arc::new(idem_memory::MemoryStore::new()));
        let n2 = 200_000;
        let start = Instant::now();
        for i in 0..n2 {
            let key = idem_core::StoreKey::parse(format!("idempotency:0::engine-{i}")).unwrap();
            let fp = idem_core::Fingerprint::of_request("POST", "/fresh", BODY.as_bytes());
            let _ = engine
                .execute(&key, fp, || async {
                    let r = idem_core::StoredResponse {
                        status: 201,
                        headers: vec![],
                        body: bytes::Bytes::from_static(b"{}"),
                    };
                    ((), idem_core::Completion::Keep(r))
                })
                .await
                .unwrap();
        }
        println!(
            "engine alone, fresh keys: {:.2} µs",
            start.elapsed().as_secs_f64() * 1e6 / n2 as f64
        );
        let n = std::env::var("IDEM_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200_000);
        for _ in 0..2 {
            let bare = time(&app, "/bare", n, |i| format!("k{i}")).await;
            let fresh = time(&app, "/fresh", n, |i| format!("k{i}-{}", rand_suffix())).await;
            let replay = time(&app, "/replay", n, |_| "same".into()).await;
            println!("µs/request: bare {bare:.2}  fresh {fresh:.2}  replay {replay:.2}");
        }
    });
    rt.block_on(run).unwrap();
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
