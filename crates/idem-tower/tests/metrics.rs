//! What the layer records through the `metrics` facade: covered requests
//! by outcome, and the gauge of those running.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use http::StatusCode;
use idem_core::metrics::{REQUESTS, REQUESTS_IN_FLIGHT};
use idem_tower::IdempotencyLayer;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::{Answer, key, memory, request};
use tokio::sync::Notify;
use tower::ServiceExt;

/// Tells when the handler started; lets it finish when released.
#[derive(Clone, Default)]
struct Gate {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

async fn handler(State(gate): State<Gate>) -> (StatusCode, &'static str) {
    gate.started.notify_one();
    gate.release.notified().await;
    (StatusCode::CREATED, "paid")
}

/// One reading of the recorder (it drains it: counters and gauges start
/// again from zero), as (name, outcome label, value).
fn read(snapshotter: &Snapshotter) -> Vec<(String, Option<String>, DebugValue)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let outcome = key
                .labels()
                .find(|l| l.key() == "outcome")
                .map(|l| l.value().to_owned());
            (key.name().to_owned(), outcome, value)
        })
        .collect()
}

fn requests(seen: &[(String, Option<String>, DebugValue)], outcome: &str) -> u64 {
    let found: Vec<_> = seen
        .iter()
        .filter(|(name, o, _)| name == REQUESTS && o.as_deref() == Some(outcome))
        .collect();
    match found.as_slice() {
        [(_, _, DebugValue::Counter(n))] => *n,
        [] => 0,
        other => panic!("{outcome}: {other:?}"),
    }
}

fn in_flight(seen: &[(String, Option<String>, DebugValue)]) -> f64 {
    let found: Vec<_> = seen
        .iter()
        .filter(|(name, ..)| name == REQUESTS_IN_FLIGHT)
        .collect();
    match found.as_slice() {
        [(_, _, DebugValue::Gauge(n))] => n.into_inner(),
        other => panic!("{REQUESTS_IN_FLIGHT}: {other:?}"),
    }
}

// One thread: the recorder is the test's own (a thread-local default), and
// the spawned request runs on this thread too.
#[tokio::test(flavor = "current_thread")]
async fn covered_requests_are_counted_by_outcome_and_gauged_while_running() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let gate = Gate::default();
    let layer = IdempotencyLayer::new(memory());
    let app = Router::new()
        .route("/p", post(handler))
        .with_state(gate.clone())
        .layer(layer.clone());
    let send = |key: Option<String>, body: &'static str| {
        let app = app.clone();
        async move {
            let response = app
                .oneshot(request("POST", "/p", key.as_deref(), body))
                .await
                .unwrap();
            Answer::read(response).await
        }
    };

    // A fresh request, held in its handler: one running, and its duplicate
    // gets 409.
    let k = key();
    let first = tokio::spawn(send(Some(k.clone()), "{}"));
    gate.started.notified().await;
    assert_eq!(
        send(Some(k.clone()), "{}").await.status,
        StatusCode::CONFLICT
    );
    let seen = read(&snapshotter);
    assert_eq!(in_flight(&seen), 1.0, "the first request is still running");
    assert_eq!(requests(&seen, "in_flight"), 1);
    assert_eq!(requests(&seen, "executed"), 0);

    gate.release.notify_one();
    assert_eq!(first.await.unwrap().status, StatusCode::CREATED);
    let replay = send(Some(k.clone()), "{}").await;
    assert!(replay.replayed(), "{replay:?}");
    let mismatch = send(Some(k.clone()), "{\"other\":1}").await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    let rejected = send(Some("\"unterminated".into()), "{}").await;
    assert_eq!(rejected.status, StatusCode::BAD_REQUEST);
    let uncovered = app
        .clone()
        .oneshot(request("GET", "/p", None, ""))
        .await
        .unwrap();
    assert_eq!(uncovered.status(), StatusCode::METHOD_NOT_ALLOWED);

    let seen = read(&snapshotter);
    assert_eq!(requests(&seen, "executed"), 1);
    assert_eq!(requests(&seen, "replayed"), 1);
    assert_eq!(requests(&seen, "mismatch"), 1);
    assert_eq!(requests(&seen, "rejected"), 1);
    assert_eq!(
        requests(&seen, "in_flight"),
        0,
        "counted in the first reading"
    );
    assert_eq!(requests(&seen, "store_error"), 0);
    assert!(
        seen.iter()
            .all(|(_, o, _)| o.as_deref() != Some("passed_through")),
        "requests the layer does not cover are not counted: {seen:?}"
    );
    // Since the first reading: the first request ended; the others came
    // and went.
    assert_eq!(in_flight(&seen), -1.0);
    // The layer's own counters saw the same.
    let own = layer.metrics().snapshot();
    assert_eq!(
        (
            own.executed,
            own.replayed,
            own.in_flight,
            own.mismatch,
            own.rejected
        ),
        (1, 1, 1, 1, 1)
    );
}
