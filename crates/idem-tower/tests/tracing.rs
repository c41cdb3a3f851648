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
