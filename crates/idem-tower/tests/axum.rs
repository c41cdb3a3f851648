//! End to end through an axum `Router`: every status path of the layer.

mod support;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Router, body::Body};
use futures::FutureExt;
use idem_conformance::doubles::UnavailableStore;
use idem_core::IdempotencyStore;
use idem_tower::IdempotencyLayer;
use support::{Answer, key, memory, request};
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }

    /// Waits until a handler has started (it counts itself first).
    async fn started(&self) {
        while self.count() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn create(State(runs): State<Runs>, headers: HeaderMap, body: String) -> impl IntoResponse {
    let n = runs.0.fetch_add(1, SeqCst) + 1;
    if let Some(ms) = headers.get("x-delay-ms") {
        let ms = ms.to_str().unwrap().parse().unwrap();
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    (
        StatusCode::CREATED,
        [
            ("content-type", "application/json"),
            ("location", "/payments/1"),
            ("set-cookie", "session=abc"),
            ("x-request-id", "req-1"),
        ],
        format!(r#"{{"run":{n},"echo":{body}}}"#),
    )
}

async fn flaky(State(runs): State<Runs>) -> impl IntoResponse {
    match runs.0.fetch_add(1, SeqCst) {
        0 => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        _ => (StatusCode::CREATED, "done"),
    }
}

async fn panicky(State(runs): State<Runs>) -> &'static str {
    if runs.0.fetch_add(1, SeqCst) == 0 {
        panic!("the handler panicked on purpose");
    }
    "done"
}

async fn big(State(runs): State<Runs>) -> String {
    runs.0.fetch_add(1, SeqCst);
    "x".repeat(4096)
}

fn app(layer: IdempotencyLayer, runs: &Runs) -> Router {
    Router::new()
        .route("/payments", post(create).get(|| async { "list" }))
        .route("/flaky", post(flaky))
        .route("/panic", post(panicky))
        .route("/big", post(big))
        .with_state(runs.clone())
        .layer(layer)
}

fn layer(store: Arc<dyn IdempotencyStore>) -> IdempotencyLayer {
    IdempotencyLayer::new(store)
        .with_storage_limit(1024)
        .with_body_limit(64)
}

async fn send(app: &Router, req: http::Request<Body>) -> Answer {
    Answer::read(app.clone().oneshot(req).await.unwrap()).await
}

#[tokio::test]
async fn get_and_keyless_posts_pass_through() {
    let runs = Runs::default();
    let app = app(layer(memory()), &runs);
    let get = send(&app, request("GET", "/payments", Some("k"), "")).await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.text(), "list");
    for _ in 0..2 {
        let a = send(&app, request("POST", "/payments", None, "{}")).await;
        assert_eq!(a.status, StatusCode::CREATED);
        assert!(!a.replayed());
        assert_eq!(a.headers["set-cookie"], "session=abc");
    }
    assert_eq!(runs.count(), 2, "without a key every POST runs");
}

#[tokio::test]
async fn bad_key_and_missing_required_key_get_400() {
    let runs = Runs::default();
    let app = app(layer(memory()), &runs);
    for bad in ["\"open", "\"a\" b", "\"\"", "a,b", &"k".repeat(256)] {
        let a = send(&app, request("POST", "/payments", Some(bad), "{}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(a.problem_type(), "https://idem.dev/problems/invalid-key");
    }
    let required = self::app(layer(memory()).with_key_required(true), &runs);
    let a = send(&required, request("POST", "/payments", None, "{}")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.problem_type(), "https://idem.dev/problems/missing-key");
    assert_eq!(runs.count(), 0);
}

#[tokio::test]
async fn body_over_the_limit_gets_413() {
    let runs = Runs::default();
    let app = app(layer(memory()), &runs);
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(100));
    let a = send(&app, request("POST", "/payments", Some(&key()), &body)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.problem_type(), "https://idem.dev/problems/body-too-large");
    assert_eq!(runs.count(), 0);
}

#[tokio::test]
async fn first_request_then_exact_replay() {
    let runs = Runs::default();
    let app = app(layer(memory()), &runs);
    let k = key();
    let first = send(&app, request("POST", "/payments", Some(&k), r#"{"a":1}"#)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.replayed());
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(
        first.headers["set-cookie"], "session=abc",
        "first answer untouched"
    );

    let quoted = format!("\"{k}\"");
    let again = send(
        &app,
        request("POST", "/payments", Some(&quoted), r#"{"a":1}"#),
    )
    .await;
    assert!(again.replayed());
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["content-type"], first.headers["content-type"]);
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert!(
        again.headers.get("set-cookie").is_none(),
        "Set-Cookie is never replayed"
    );
    assert!(again.headers.get("x-request-id").is_none());
    assert_eq!(runs.count(), 1);
}

#[tokio::test]
async fn same_key_while_running_gets_409_with_retry_after() {
    let runs = Runs::default();
    let app = app(layer(memory()), &runs);
    let k = key();
    let mut slow = request("POST", "/payments", Some(&k), "{}");
    slow.headers_mut()
        .insert("x-delay-ms", "1000".parse().unwrap());
    let first = tokio::spawn(app.clone().oneshot(slow));
    runs.started().await;
    let second = send(&app, request("POST", "/payments", Some(&k), "{}")).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(
        second.problem_type(),
        "https://idem.dev/problems/key-in-flight"
    );
    let secs: u64 = second.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs));
    let first = Answer::read(first.await.unwrap().unwrap()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(runs.count(), 1);
}

#[tokio::test]
async fn same_key_other_payload_gets_422() {
    let runs = Runs::default();
    let app = app(layer(memory()), &runs);
    let k = key();
    send(&app, request("POST", "/payments", Some(&k), r#"{"a":1}"#)).await;
    let other = send(&app, request("POST", "/payments", Some(&k), r#"{"a":2}"#)).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        other.problem_type(),
        "https://idem.dev/problems/key-mismatch"
    );
    let other_path = send(
        &app,
        request("POST", "/payments?x=1", Some(&k), r#"{"a":1}"#),
    )
    .await;
    assert_eq!(other_path.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(runs.count(), 1);
}

#[tokio::test]
async fn a_5xx_is_released_and_the_retry_runs_again() {
    let runs = Runs::default();
    let app = app(layer(memory()), &runs);
    let k = key();
    let first = send(&app, request("POST", "/flaky", Some(&k), "{}")).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    let retry = send(&app, request("POST", "/flaky", Some(&k), "{}")).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert!(!retry.replayed());
    let replay = send(&app, request("POST", "/flaky", Some(&k), "{}")).await;
    assert!(replay.replayed());
    assert_eq!(replay.text(), "done");
    assert_eq!(runs.count(), 2);
}

#[tokio::test]
async fn a_panic_in_the_handler_releases_the_key() {
    let runs = Runs::default();
    let app = app(layer(memory()), &runs);
    let k = key();
    let first = AssertUnwindSafe(
        app.clone()
            .oneshot(request("POST", "/panic", Some(&k), "{}")),
    )
    .catch_unwind()
    .await;
    assert!(
        first.is_err(),
        "the panic reaches the caller as without the layer"
    );
    let retry = send(&app, request("POST", "/panic", Some(&k), "{}")).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.text(), "done");
    assert!(!retry.replayed());
    assert_eq!(runs.count(), 2);
}

#[tokio::test]
async fn too_large_response_is_not_retained_and_never_rerun() {
    let runs = Runs::default();
    let app = app(layer(memory()), &runs);
    let k = key();
    let first = send(&app, request("POST", "/big", Some(&k), "{}")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body.len(), 4096, "the first caller gets it all");
    let retry = send(&app, request("POST", "/big", Some(&k), "{}")).await;
    assert_eq!(retry.status, StatusCode::GONE);
    assert!(retry.replayed());
    assert_eq!(
        retry.problem_type(),
        "https://idem.dev/problems/response-not-retained"
    );
    let doc: serde_json::Value = serde_json::from_slice(&retry.body).unwrap();
    assert_eq!(doc["original_status"], 200);
    assert_eq!(runs.count(), 1);
}

#[tokio::test]
async fn store_down_gets_503_or_passes_through_when_fail_open() {
    let runs = Runs::default();
    let closed = app(layer(Arc::new(UnavailableStore::new())), &runs);
    let a = send(&closed, request("POST", "/payments", Some(&key()), "{}")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        a.problem_type(),
        "https://idem.dev/problems/store-unavailable"
    );
    assert_eq!(runs.count(), 0);

    let open_layer = layer(Arc::new(UnavailableStore::new())).with_fail_open(true);
    let open = app(open_layer.clone(), &runs);
    let a = send(
        &open,
        request("POST", "/payments", Some(&key()), r#"{"x":1}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(
        a.text().contains(r#""echo":{"x":1}"#),
        "the body reached the handler"
    );
    assert_eq!(runs.count(), 1);
    assert_eq!(open_layer.metrics().errors(), 1);
}

#[tokio::test]
async fn scopes_isolate_clients_and_a_missing_principal_gets_401() {
    let runs = Runs::default();
    let scoped = layer(memory()).with_scope(|parts: &http::request::Parts| {
        parts
            .headers
            .get("x-tenant")?
            .to_str()
            .ok()
            .map(str::to_owned)
    });
    let app = app(scoped, &runs);
    let k = key();
    let as_tenant = |t: &str| {
        let mut r = request("POST", "/payments", Some(&k), "{}");
        r.headers_mut().insert("x-tenant", t.parse().unwrap());
        r
    };
    let alice = send(&app, as_tenant("alice")).await;
    let bob = send(&app, as_tenant("bob")).await;
    assert!(!alice.replayed() && !bob.replayed());
    assert_ne!(alice.body, bob.body, "bob never sees alice's response");
    let alice_again = send(&app, as_tenant("alice")).await;
    assert!(alice_again.replayed());
    assert_eq!(alice_again.body, alice.body);
    assert_eq!(runs.count(), 2);

    let nobody = send(&app, request("POST", "/payments", Some(&k), "{}")).await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        nobody.problem_type(),
        "https://idem.dev/problems/missing-scope"
    );
}

#[tokio::test]
async fn canonical_json_ignores_key_order_and_whitespace() {
    let runs = Runs::default();
    let app = app(layer(memory()).with_canonical_json(true), &runs);
    let k = key();
    send(
        &app,
        request("POST", "/payments", Some(&k), r#"{"a":1,"b":2}"#),
    )
    .await;
    let same = send(
        &app,
        request("POST", "/payments", Some(&k), r#"{ "b": 2, "a": 1 }"#),
    )
    .await;
    assert!(same.replayed());
    assert_eq!(runs.count(), 1);

    let raw = self::app(layer(memory()), &runs);
    send(
        &raw,
        request("POST", "/payments", Some(&k), r#"{"a":1,"b":2}"#),
    )
    .await;
    let other = send(
        &raw,
        request("POST", "/payments", Some(&k), r#"{ "b": 2, "a": 1 }"#),
    )
    .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn route_layer_covers_only_its_routes_and_metrics_count() {
    let runs = Runs::default();
    let layer = layer(memory()).with_key_required(true);
    let app = Router::new()
        .route("/payments", post(create))
        .route_layer(layer.clone())
        .route("/open", post(|| async { "open" }))
        .with_state(runs.clone());
    let open = send(&app, request("POST", "/open", None, "{}")).await;
    assert_eq!(open.status, StatusCode::OK);
    let k = key();
    send(&app, request("POST", "/payments", Some(&k), "{}")).await;
    send(&app, request("POST", "/payments", Some(&k), "{}")).await;
    send(&app, request("POST", "/payments", Some(&k), "{\"x\":1}")).await;
    send(&app, request("POST", "/payments", None, "{}")).await;
    let m = layer.metrics().snapshot();
    assert_eq!(
        (m.executed, m.replayed, m.mismatch, m.rejected),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn keep_rule_replayed_headers_and_methods_are_configurable() {
    let runs = Runs::default();
    // Keep only 201; replay a custom header; Set-Cookie stays out even if listed.
    let layer = layer(memory())
        .with_keep_when(|s| s == StatusCode::OK)
        .with_replayed_headers([
            http::header::LOCATION,
            http::header::SET_COOKIE,
            http::HeaderName::from_static("x-request-id"),
        ])
        .with_methods([http::Method::PUT, http::Method::POST]);
    let metrics = layer.metrics();
    let app = Router::new()
        .route("/payments", post(create).put(create).patch(create))
        .with_state(runs.clone())
        .layer(layer);
    let k = key();
    // 201 is not kept under this rule: released, so the retry runs again.
    send(&app, request("POST", "/payments", Some(&k), "{}")).await;
    let again = send(&app, request("POST", "/payments", Some(&k), "{}")).await;
    assert!(!again.replayed());
    assert_eq!(runs.count(), 2);
    assert_eq!(metrics.snapshot().released, 2);

    let keep_all = layer_with_all_kept(memory());
    let app = Router::new()
        .route("/payments", post(create).put(create).patch(create))
        .with_state(runs.clone())
        .layer(keep_all);
    let k = key();
    send(&app, request("PUT", "/payments", Some(&k), "{}")).await;
    let replay = send(&app, request("PUT", "/payments", Some(&k), "{}")).await;
    assert!(replay.replayed(), "PUT is covered when configured");
    assert_eq!(replay.headers["location"], "/payments/1");
    assert!(
        replay.headers.get("x-request-id").is_none(),
        "never request ids"
    );
    assert!(
        replay.headers.get("set-cookie").is_none(),
        "never Set-Cookie"
    );
    assert!(
        replay.headers.get("content-type").is_none(),
        "not on this list"
    );
    // PATCH is not on this layer's list: passes through every time.
    let before = runs.count();
    send(&app, request("PATCH", "/payments", Some(&k), "{}")).await;
    send(&app, request("PATCH", "/payments", Some(&k), "{}")).await;
    assert_eq!(runs.count(), before + 2);
}

fn layer_with_all_kept(store: Arc<dyn IdempotencyStore>) -> IdempotencyLayer {
    IdempotencyLayer::new(store)
        .with_methods([http::Method::PUT])
        .with_replayed_headers([
            http::header::LOCATION,
            http::header::SET_COOKIE,
            http::HeaderName::from_static("x-request-id"),
        ])
}

#[tokio::test]
async fn retry_after_is_the_configured_hint() {
    let runs = Runs::default();
    let app = app(
        layer(memory())
            .with_lease(Duration::from_secs(5))
            .with_retry_hint(Duration::from_secs(3)),
        &runs,
    );
    let k = key();
    let mut slow = request("POST", "/payments", Some(&k), "{}");
    slow.headers_mut()
        .insert("x-delay-ms", "300".parse().unwrap());
    let first = tokio::spawn(app.clone().oneshot(slow));
    runs.started().await;
    let busy = send(&app, request("POST", "/payments", Some(&k), "{}")).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    let secs: u64 = busy.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(secs, 3, "Retry-After is the configured hint");
    first.await.unwrap().unwrap();
}
