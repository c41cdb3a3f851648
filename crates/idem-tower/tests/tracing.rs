//! Each covered request has an `idempotency` span whose `outcome` field says
//! what the layer did.

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::post;
use idem_tower::IdempotencyLayer;
use support::{key, memory, request};
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Collects every `outcome` recorded on an `idempotency` span.
#[derive(Clone, Default)]
struct Outcomes(Arc<Mutex<Vec<String>>>);

struct OutcomeVisitor<'a>(&'a Outcomes);

impl Visit for OutcomeVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "outcome" {
            self.0.0.lock().unwrap().push(value.to_owned());
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for Outcomes {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        assert_eq!(attrs.metadata().name(), "idempotency");
    }
    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        values.record(&mut OutcomeVisitor(self));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn spans_carry_the_outcome() {
    let outcomes = Outcomes::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(outcomes.clone()));
    let app = Router::new()
        .route("/p", post(|| async { "ok" }))
        .layer(IdempotencyLayer::new(memory()));
    let k = key();
    for body in ["{}", "{}", "{\"other\":1}"] {
        app.clone()
            .oneshot(request("POST", "/p", Some(&k), body))
            .await
            .unwrap();
    }
    app.clone()
        .oneshot(request("POST", "/p", Some("\"bad"), "{}"))
        .await
        .unwrap();
    assert_eq!(
        *outcomes.0.lock().unwrap(),
        ["executed", "replayed", "mismatch"],
        "a rejected request has no span: it never reaches the store"
    );
}

/// Collects the `original_request_id` of every event that has one, with
/// its message.
#[derive(Clone, Default)]
struct OriginalIds(Arc<Mutex<Vec<(String, String)>>>);

#[derive(Default)]
struct EventVisitor {
    message: String,
    original: Option<String>,
}

impl Visit for EventVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "original_request_id" {
            self.original = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for OriginalIds {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut visitor = EventVisitor::default();
        event.record(&mut visitor);
        if let Some(original) = visitor.original {
            self.0.lock().unwrap().push((visitor.message, original));
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_replay_and_a_409_name_the_first_request() {
    let ids = OriginalIds::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(ids.clone()));
    // The first run tells it started, then waits to be released.
    let started = Arc::new(tokio::sync::Notify::new());
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
    let app = Router::new()
        .route(
            "/p",
            post({
                let started = started.clone();
                move || {
                    let (started, released) = (started.clone(), released.clone());
                    async move {
                        started.notify_one();
                        if let Some(rx) = released.lock().await.take() {
                            let _ = rx.await;
                        }
                        "ok"
                    }
                }
            }),
        )
        .layer(IdempotencyLayer::new(memory()));
    let k = key();
    let with_id = |id: &str| {
        let mut r = request("POST", "/p", Some(&k), "{}");
        r.headers_mut().insert("x-request-id", id.parse().unwrap());
        r
    };
    let first = tokio::spawn(app.clone().oneshot(with_id("req-first")));
    started.notified().await;
    let conflict =
        support::Answer::read(app.clone().oneshot(with_id("req-second")).await.unwrap()).await;
    assert_eq!(conflict.status, http::StatusCode::CONFLICT);
    let doc: serde_json::Value = serde_json::from_slice(&conflict.body).unwrap();
    assert_eq!(doc["original_request_id"], "req-first", "{doc}");
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    let replay = app.clone().oneshot(with_id("req-third")).await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");

    let seen = ids.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].0.contains("still running"), "{seen:?}");
    assert!(seen[1].0.contains("replaying"), "{seen:?}");
    assert!(seen.iter().all(|(_, id)| id == "req-first"), "{seen:?}");
}
