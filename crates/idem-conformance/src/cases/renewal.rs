//! The engine renews a running handler's lease, and tells the handler when
//! the lease is lost.

use std::time::Duration;

use idem_core::{Idempotency, Outcome};

use crate::Subject;
use crate::cases::engine::{fp, keep};

/// An engine whose lease is three short TTLs, renewed every third of it.
fn renewing(s: &Subject) -> (Idempotency, Duration) {
    let lease = s.short_ttl() * 3;
    let engine = Idempotency::new(s.store().clone()).with_lease(lease);
    (engine, lease)
}

/// A handler that runs three leases long keeps its key all along: a
/// duplicate past the first lease is still told it is in flight, and the
/// result is kept and replayed.
pub async fn engine_renews_the_lease_of_a_slow_handler(s: &Subject) {
    let (engine, lease) = renewing(s);
    let key = s.fresh_key();
    let first = {
        let (engine, key) = (engine.clone(), key.clone());
        tokio::spawn(async move {
            let handler = |lease_signal: idem_core::LeaseSignal| async move {
                tokio::time::sleep(lease * 3).await;
                assert!(!lease_signal.is_lost(), "the lease was lost while renewed");
                keep("slow").await
            };
            engine.execute(&key, fp("a"), handler).await.unwrap()
        })
    };
    tokio::time::sleep(lease * 2).await;
    let dup = engine.execute(&key, fp("a"), |_| keep("dup")).await;
    assert!(
        matches!(dup, Ok(Outcome::InFlight { .. })),
        "two leases into a renewed run, a duplicate must be in flight, got {dup:?}"
    );
    let first = first.await.expect("the slow handler panicked");
    assert!(matches!(first, Outcome::Executed(_)), "{first:?}");
    let retry = engine.execute(&key, fp("a"), |_| keep("again")).await;
    assert!(
        matches!(retry, Ok(Outcome::Replayed(ref r)) if r.body == "slow"),
        "{retry:?}"
    );
}

/// When the claim is taken away (here: removed) while the handler runs, the
/// next renewal is refused: the handler's signal fires, and its result is
/// not stored.
pub async fn engine_signals_a_lost_lease_and_keeps_nothing(s: &Subject) {
    let (engine, lease) = renewing(s);
    let key = s.fresh_key();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let run = {
        let (engine, key) = (engine.clone(), key.clone());
        tokio::spawn(async move {
            let handler = |lease_signal: idem_core::LeaseSignal| async move {
                started_tx.send(()).unwrap();
                let told = tokio::time::timeout(lease * 3, lease_signal.lost()).await;
                assert!(
                    told.is_ok(),
                    "the handler was never told its lease was lost"
                );
                keep("late").await
            };
            engine.execute(&key, fp("a"), handler).await.unwrap()
        })
    };
    started_rx.await.unwrap();
    assert!(s.store().remove(&key).await.unwrap());
    let outcome = run.await.expect("the handler was not told");
    assert!(
        matches!(outcome, Outcome::Lost(_)),
        "a run whose lease was lost must not be kept, got {outcome:?}"
    );
    s.assert_absent(&key, "the result of a run whose lease was lost was stored")
        .await;
}
