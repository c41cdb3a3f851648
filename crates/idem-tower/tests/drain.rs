//! The drain: requests running when it starts finish and are stored, new
//! covered ones get `503` with `Retry-After`, uncovered ones pass, and
//! `finished` keeps its bound; then 100 racing requests with the drain
//! started in the middle.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Router, response::IntoResponse};
use idem_core::IdempotencyStore;
use idem_tower::IdempotencyLayer;
use support::{Answer, key, memory, request};
use tower::ServiceExt;

const DRAINING: &str = "https://idem.dev/problems/draining";

/// Handler runs per key (`""` for requests without one).
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<HashMap<String, usize>>>);

impl Runs {
    fn of(&self, key: &str) -> usize {
        self.0.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }

    fn snapshot(&self) -> HashMap<String, usize> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `n` handlers have started (they count themselves first).
    async fn started(&self, n: usize) {
        while self.total() < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Counts its run, sleeps `x-delay-ms`, answers 201 with the key.
async fn pay(State(runs): State<Runs>, headers: HeaderMap) -> impl IntoResponse {
    let key = headers
        .get("idempotency-key")
        .map(|k| k.to_str().unwrap().to_owned())
        .unwrap_or_default();
    *runs.0.lock().unwrap().entry(key.clone()).or_default() += 1;
    if let Some(ms) = headers.get("x-delay-ms") {
        let ms = ms.to_str().unwrap().parse().unwrap();
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    (StatusCode::CREATED, format!("paid {key}"))
}

fn app(layer: IdempotencyLayer, runs: &Runs) -> Router {
    Router::new()
        .route("/pay", post(pay).get(|| async { "list" }))
        .with_state(runs.clone())
        .layer(layer)
}

fn slow(key: Option<&str>, ms: u64) -> http::Request<Body> {
    let mut req = request("POST", "/pay", key, "{}");
    req.headers_mut().insert("x-delay-ms", ms.into());
    req
}

async fn send(app: &Router, req: http::Request<Body>) -> Answer {
    Answer::read(app.clone().oneshot(req).await.unwrap()).await
}

/// The answer a retry gets from a fresh, undrained layer over `store`.
async fn retry(store: &Arc<dyn IdempotencyStore>, runs: &Runs, key: &str) -> Answer {
    let fresh = app(IdempotencyLayer::new(store.clone()), runs);
    send(&fresh, request("POST", "/pay", Some(key), "{}")).await
}

fn assert_draining(answer: &Answer, retry_after: &str) {
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.problem_type(), DRAINING);
    assert_eq!(answer.headers["retry-after"], retry_after);
}

#[tokio::test]
async fn a_request_running_when_the_drain_starts_finishes_and_is_stored() {
    let store = memory();
    let runs = Runs::default();
    let layer = IdempotencyLayer::new(store.clone());
    let drain = layer.drain();
    let app = app(layer.clone(), &runs);
    let k = key();
    let running = tokio::spawn({
        let app = app.clone();
        let k = k.clone();
        async move { send(&app, slow(Some(&k), 300)).await }
    });
    runs.started(1).await;

    drain.start();
    drain.start(); // idempotent
    assert!(drain.is_draining());
    assert!(
        layer.drain().is_draining(),
        "every handle is the same drain"
    );
    assert_eq!(drain.in_flight(), 1);

    // A new covered request is turned away; the handler does not run.
    let turned_away = send(&app, request("POST", "/pay", Some(&key()), "{}")).await;
    assert_draining(&turned_away, "1");
    // So is a retry of the running key: it is new to the layer.
    assert_draining(
        &send(&app, request("POST", "/pay", Some(&k), "{}")).await,
        "1",
    );
    // Uncovered requests pass: other methods, and POST without a key.
    assert_eq!(
        send(&app, request("GET", "/pay", Some(&k), ""))
            .await
            .text(),
        "list"
    );
    let keyless = send(&app, request("POST", "/pay", None, "{}")).await;
    assert_eq!(keyless.status, StatusCode::CREATED);

    assert!(drain.finished(Duration::from_secs(5)).await);
    assert_eq!(drain.in_flight(), 0);
    let first = running.await.unwrap();
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.text(), format!("paid {k}"));

    // Stored: the retry (on another instance, say) replays it.
    let again = retry(&store, &runs, &k).await;
    assert!(again.replayed());
    assert_eq!(again.body, first.body);
    assert_eq!(runs.of(&k), 1, "the handler ran once");
    let seen = layer.metrics().snapshot();
    assert_eq!((seen.draining, seen.executed), (2, 1));
}

#[tokio::test]
async fn finished_is_false_while_a_handler_outlives_the_bound() {
    let runs = Runs::default();
    let layer = IdempotencyLayer::new(memory());
    let drain = layer.drain();
    let app = app(layer, &runs);
    let running = tokio::spawn({
        let app = app.clone();
        async move { send(&app, slow(Some(&key()), 600)).await }
    });
    runs.started(1).await;
    drain.start();
    assert!(!drain.finished(Duration::from_millis(100)).await);
    assert_eq!(drain.in_flight(), 1, "a request past the bound still runs");
    assert!(drain.finished(Duration::from_secs(5)).await);
    assert_eq!(running.await.unwrap().status, StatusCode::CREATED);
}

#[tokio::test]
async fn finished_waits_for_the_start_and_is_true_at_once_when_idle() {
    let layer = IdempotencyLayer::new(memory());
    let drain = layer.drain();
    assert!(!drain.is_draining());
    assert!(
        !drain.finished(Duration::from_millis(20)).await,
        "not started"
    );
    drain.start();
    assert!(drain.finished(Duration::ZERO).await);
}

#[tokio::test]
async fn a_request_whose_client_went_away_counts_until_it_is_stored() {
    let store = memory();
    let runs = Runs::default();
    let layer = IdempotencyLayer::new(store.clone());
    let drain = layer.drain();
    let app = app(layer, &runs);
    let k = key();
    let abandoned = tokio::spawn({
        let app = app.clone();
        let k = k.clone();
        async move { send(&app, slow(Some(&k), 300)).await }
    });
    runs.started(1).await;
    abandoned.abort(); // the exchange moves onto a task of its own
    let _ = abandoned.await;

    drain.start();
    assert_eq!(drain.in_flight(), 1);
    assert!(drain.finished(Duration::from_secs(5)).await);
    let again = retry(&store, &runs, &k).await;
    assert!(again.replayed(), "{again:?}");
    assert_eq!(runs.of(&k), 1);
}

#[tokio::test]
async fn a_required_key_route_turns_keyless_requests_away_with_the_set_retry_after() {
    let runs = Runs::default();
    let layer = IdempotencyLayer::new(memory())
        .with_key_required(true)
        .with_drain_retry_after(Duration::from_millis(2500));
    let drain = layer.drain();
    let app = app(layer, &runs);
    drain.start();
    assert_draining(&send(&app, request("POST", "/pay", None, "{}")).await, "3");
    assert_draining(
        &send(&app, request("POST", "/pay", Some(&key()), "{}")).await,
        "3",
    );
    assert_eq!(
        send(&app, request("GET", "/pay", None, "")).await.text(),
        "list"
    );
    assert_eq!(runs.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_in_the_middle_of_100_racing_requests_loses_no_completion() {
    let store = memory();
    let runs = Runs::default();
    let layer = IdempotencyLayer::new(store.clone());
    let drain = layer.drain();
    let app = app(layer.clone(), &runs);
    let keys: Vec<String> = (0..100).map(|_| key()).collect();
    let tasks: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let app = app.clone();
            let k = k.clone();
            tokio::spawn(async move {
                // Spread over ~100 ms; each handler takes 50 to 150 ms.
                tokio::time::sleep(Duration::from_millis(i as u64)).await;
                send(&app, slow(Some(&k), 50 + (i as u64 * 37) % 100)).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drain.start();
    assert!(drain.finished(Duration::from_secs(10)).await);

    // The moment `finished` says so, every key whose handler ran has its
    // result stored: its retry (on another instance) replays it.
    let ran = runs.snapshot();
    for (k, n) in &ran {
        assert_eq!(*n, 1, "{k} ran {n} times");
        let again = retry(&store, &runs, k).await;
        assert!(again.replayed(), "{k}: {again:?}");
        assert_eq!(again.text(), format!("paid {k}"));
    }

    // Every request got its handler's answer or a 503.
    let mut answered = 0;
    let mut turned_away = 0;
    for (k, task) in keys.iter().zip(tasks) {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::CREATED => {
                assert_eq!(answer.text(), format!("paid {k}"));
                assert!(ran.contains_key(k));
                answered += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_draining(&answer, "1");
                assert!(!ran.contains_key(k), "a request turned away did not run");
                turned_away += 1;
            }
            other => panic!("{k}: unexpected {other}: {answer:?}"),
        }
    }
    assert!(
        answered > 0 && turned_away > 0,
        "{answered} / {turned_away}"
    );
    assert_eq!(ran.len(), answered);
    assert_eq!(runs.total(), answered, "no retry ran a handler again");
    let seen = layer.metrics().snapshot();
    assert_eq!(seen.executed, answered as u64);
    assert_eq!(seen.draining, turned_away as u64);
}
