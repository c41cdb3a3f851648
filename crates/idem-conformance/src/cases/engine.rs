//! The protocol engine over the store: executed, replayed, in flight, mismatch.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use idem_core::{Completion, Error, Fingerprint, Idempotency, LeaseToken, Outcome, StoredResponse};

use crate::Subject;
use crate::doubles::UnavailableStore;

fn engine(s: &Subject) -> Idempotency {
    Idempotency::new(s.store().clone())
}

fn response(body: &'static str) -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![("content-type".into(), Bytes::from_static(b"text/plain"))],
        body: Bytes::from_static(body.as_bytes()),
    }
}

pub(crate) fn fp(body: &str) -> Fingerprint {
    Fingerprint::of_request("POST", "/payments", body.as_bytes())
}

pub(crate) async fn keep(body: &'static str) -> (StoredResponse, Completion) {
    let r = response(body);
    (r.clone(), Completion::Keep(r))
}

/// The first request runs the handler; a retry with the same fingerprint gets
/// the stored response back without running it.
pub async fn engine_executes_then_replays(s: &Subject) {
    let engine = engine(s);
    let key = s.fresh_key();
    let runs = AtomicUsize::new(0);
    let first = engine
        .execute(&key, fp("a"), |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            keep("paid")
        })
        .await
        .unwrap();
    assert!(
        matches!(first, Outcome::Executed(ref r) if r.body == "paid"),
        "{first:?}"
    );
    let retry = engine
        .execute(&key, fp("a"), |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            keep("paid twice")
        })
        .await
        .unwrap();
    match retry {
        Outcome::Replayed(r) => assert_eq!(r, response("paid")),
        other => panic!("expected a replay, got {other:?}"),
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran twice");
}

/// While the first request runs, a duplicate is told it is in flight.
pub async fn engine_reports_in_flight_while_running(s: &Subject) {
    let engine = engine(s);
    let key = s.fresh_key();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
    let first = {
        let (engine, key) = (engine.clone(), key.clone());
        tokio::spawn(async move {
            engine
                .execute(&key, fp("a"), |_| async move {
                    started_tx.send(()).unwrap();
                    finish_rx.await.unwrap();
                    keep("done").await
                })
                .await
        })
    };
    started_rx.await.unwrap();
    let dup = engine
        .execute(&key, fp("a"), |_| keep("dup"))
        .await
        .unwrap();
    match dup {
        Outcome::InFlight { retry_after } => assert_eq!(
            retry_after,
            idem_core::DEFAULT_RETRY_HINT,
            "a duplicate is told to come back after the short hint, not the whole lease"
        ),
        other => panic!("expected in-flight, got {other:?}"),
    }
    finish_tx.send(()).unwrap();
    assert!(matches!(
        first.await.unwrap().unwrap(),
        Outcome::Executed(_)
    ));
}

/// The same key with another payload is a mismatch, while running and after.
pub async fn engine_reports_mismatch_for_another_fingerprint(s: &Subject) {
    let engine = engine(s);
    let key = s.fresh_key();
    let pending = idem_core::Record::in_progress(fp("a"), engine.lease()).encode();
    let token = s
        .claim_acquired(&key, pending, engine.lease(), "fresh key")
        .await;
    let other = engine.execute(&key, fp("b"), |_| keep("b")).await.unwrap();
    assert!(
        matches!(other, Outcome::Mismatch),
        "in progress, other payload: {other:?}"
    );
    assert!(s.store().release(&key, &token).await.unwrap());

    engine.execute(&key, fp("a"), |_| keep("a")).await.unwrap();
    let other = engine.execute(&key, fp("b"), |_| keep("b")).await.unwrap();
    assert!(
        matches!(other, Outcome::Mismatch),
        "completed, other payload: {other:?}"
    );
}

/// A handler that asks for release leaves the key free: the retry runs again.
pub async fn engine_release_lets_a_retry_run_again(s: &Subject) {
    let engine = engine(s);
    let key = s.fresh_key();
    let first = engine
        .execute(&key, fp("a"), |_| async { ("503", Completion::Release) })
        .await
        .unwrap();
    assert!(matches!(first, Outcome::Released("503")));
    assert!(
        !s.store().exists(&key).await.unwrap(),
        "a released key must be absent"
    );
    let retry = engine.execute(&key, fp("a"), |_| keep("ok")).await.unwrap();
    assert!(
        matches!(retry, Outcome::Executed(_)),
        "the retry must run: {retry:?}"
    );
}

/// A panicking handler releases the key, and the panic reaches the caller.
pub async fn engine_releases_the_key_when_the_handler_panics(s: &Subject) {
    let engine = engine(s);
    let key = s.fresh_key();
    let result = std::panic::AssertUnwindSafe(engine.execute(&key, fp("a"), |_| async {
        if key.as_str().is_empty() {
            return keep("unreachable").await;
        }
        panic!("handler failed on purpose")
    }))
    .catch_unwind()
    .await;
    assert!(result.is_err(), "the panic must resume");
    assert!(
        !s.store().exists(&key).await.unwrap(),
        "the key must be released after a panic"
    );
}

/// A response too large to keep is recorded as done: the retry is told, and
/// the handler never runs again.
pub async fn engine_keeps_a_not_retained_marker(s: &Subject) {
    let engine = engine(s);
    let key = s.fresh_key();
    engine
        .execute(&key, fp("a"), |_| async {
            ((), Completion::KeepNotRetained { status: 200 })
        })
        .await
        .unwrap();
    let retry = engine
        .execute(&key, fp("a"), |_| keep("again"))
        .await
        .unwrap();
    assert!(
        matches!(retry, Outcome::ReplayedNotRetained { status: 200 }),
        "{retry:?}"
    );
}

/// A store error reaches the caller as an error; the handler does not run.
pub async fn engine_surfaces_store_errors(s: &Subject) {
    let engine = Idempotency::new(Arc::new(UnavailableStore::new()));
    let ran = AtomicUsize::new(0);
    let result = engine
        .execute(&s.fresh_key(), fp("a"), |_| {
            ran.fetch_add(1, Ordering::SeqCst);
            keep("x")
        })
        .await;
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "{result:?}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// With its server unreachable, every operation of the store is an error,
/// never "absent" or "false".
pub async fn unreachable_store_is_an_error(s: &Subject) {
    let store = s.store();
    let key = s.fresh_key();
    let hour = Duration::from_secs(3600);
    let token = LeaseToken::generate();
    let results = [
        ("find", store.find(&key).await.err()),
        ("exists", store.exists(&key).await.err()),
        ("remove", store.remove(&key).await.err()),
        ("store", store.store(&key, Bytes::new(), hour).await.err()),
        ("claim", store.claim(&key, Bytes::new(), hour).await.err()),
        ("extend", store.extend(&key, &token, hour).await.err()),
        (
            "complete",
            store.complete(&key, &token, Bytes::new(), hour).await.err(),
        ),
        ("release", store.release(&key, &token).await.err()),
    ];
    for (op, error) in results {
        let error = error.unwrap_or_else(|| panic!("{op} on an unreachable store returned Ok"));
        assert!(
            error.is_transient(),
            "{op}: an unreachable store must be Unavailable, got {error:?}"
        );
    }
}
