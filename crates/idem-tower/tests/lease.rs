//! The handler behind the layer sees its lease: an axum handler takes
//! `Extension<LeaseSignal>`; when the claim is taken away mid-run, the signal
//! fires and the response is not kept.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::{Extension, Router};
use idem_core::{IdempotencyKey, IdempotencyStore, KeySpace, Scope};
use idem_tower::{IdempotencyLayer, LeaseSignal};
use support::{Answer, key, memory, request};
use tower::ServiceExt;

/// Waits up to two seconds for the lease to be lost, and says which.
async fn watch(Extension(lease): Extension<LeaseSignal>) -> &'static str {
    match tokio::time::timeout(Duration::from_secs(2), lease.lost()).await {
        Ok(()) => "lost",
        Err(_) => "kept",
    }
}

fn app(store: Arc<dyn IdempotencyStore>) -> Router {
    let layer = IdempotencyLayer::new(store).with_lease(Duration::from_millis(300));
    Router::new().route("/watch", post(watch)).layer(layer)
}

#[tokio::test]
async fn a_renewed_lease_is_kept_and_the_response_stored() {
    let app = app(memory());
    let k = key();
    let first = Answer::read(
        app.clone()
            .oneshot(request("POST", "/watch", Some(&k), ""))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        first.text(),
        "kept",
        "a lease renewed every 100 ms was lost"
    );
    let retry = Answer::read(
        app.oneshot(request("POST", "/watch", Some(&k), ""))
            .await
            .unwrap(),
    )
    .await;
    assert!(
        retry.replayed(),
        "the response of a kept lease was not stored"
    );
}

#[tokio::test]
async fn a_lost_lease_is_signalled_and_nothing_is_stored() {
    let store = memory();
    let app = app(store.clone());
    let k = key();
    let running = tokio::spawn(app.clone().oneshot(request("POST", "/watch", Some(&k), "")));
    // The claim is taken away under the running handler.
    let stored =
        KeySpace::default().key(&Scope::global(), &IdempotencyKey::new(k.clone()).unwrap());
    let removed = async {
        loop {
            if store.remove(&stored).await.unwrap() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(1), removed)
        .await
        .expect("the claim never appeared");
    let first = Answer::read(running.await.unwrap().unwrap()).await;
    assert_eq!(
        first.text(),
        "lost",
        "the handler was not told its lease was lost"
    );
    assert!(
        !store.exists(&stored).await.unwrap(),
        "the response of a run whose lease was lost was stored"
    );
}
