//! The typed API ([`idem_core::Call`]) over the store: a value executed then
//! replayed, a mismatch, a race on one key, errors released or kept, and a
//! record it cannot read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use idem_core::{CallError, CallExt, Called, Idempotency, KeepErrorsIf, Outcome};
use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

use crate::Subject;
use crate::cases::engine::keep;

const RACERS: usize = 32;

/// A command's input, as a caller would pass it.
#[derive(Debug, Serialize)]
struct Transfer {
    from: &'static str,
    to: &'static str,
    cents: u64,
}

/// A handler's value, kept as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Receipt {
    id: String,
    cents: u64,
}

/// A handler's error: the first kind is final (kept), the second may pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum TransferError {
    InsufficientFunds { missing: u64 },
    BankDown,
}

fn transfer(cents: u64) -> Transfer {
    Transfer {
        from: "alice",
        to: "bob",
        cents,
    }
}

fn engine(s: &Subject) -> Idempotency {
    Idempotency::new(s.store().clone())
}

/// Counts the runs and returns a receipt whose id is the run's number, so
/// that a value from another run would show.
async fn pay(runs: &AtomicUsize, cents: u64) -> Result<Receipt, TransferError> {
    let run = runs.fetch_add(1, Ordering::SeqCst);
    Ok(Receipt {
        id: format!("run-{run}"),
        cents,
    })
}

/// The first call runs the handler and keeps its value; a retry with the
/// same input gets the same value back, replayed, without running it.
pub async fn call_executes_then_replays_the_same_value(s: &Subject) {
    let (engine, key, runs) = (engine(s), s.fresh_key(), AtomicUsize::new(0));
    let input = transfer(500);
    let first = engine.call(&key, &input).run(|_| pay(&runs, 500)).await;
    let expected = Receipt {
        id: "run-0".into(),
        cents: 500,
    };
    match first {
        Ok(Called::Executed(ref r)) if *r == expected => {}
        other => panic!("the first call must run and keep its value: {other:?}"),
    }
    for _ in 0..3 {
        let retry = engine.call(&key, &input).run(|_| pay(&runs, 500)).await;
        match retry {
            Ok(Called::Replayed(ref r)) if *r == expected => {}
            other => panic!("a retry must replay the first value: {other:?}"),
        }
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the handler ran more than once"
    );
}

/// The same key with another input is a mismatch; the handler does not run.
pub async fn call_with_another_input_is_a_mismatch(s: &Subject) {
    let (engine, key, runs) = (engine(s), s.fresh_key(), AtomicUsize::new(0));
    engine
        .call(&key, &transfer(500))
        .run(|_| pay(&runs, 500))
        .await
        .expect("the first call runs");
    let other = engine
        .call(&key, &transfer(501))
        .run(|_| pay(&runs, 501))
        .await;
    assert!(matches!(other, Err(CallError::Mismatch)), "{other:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a mismatch ran the handler");
}

/// 32 identical calls race on one key: the handler runs exactly once, and
/// every other call gets its value replayed or is told it is in flight.
pub async fn racing_calls_run_the_handler_once(s: &Subject) {
    let (engine, key) = (engine(s), s.fresh_key());
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (engine, key, runs, barrier) =
                (engine.clone(), key.clone(), runs.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let input = transfer(700);
                engine
                    .call(&key, &input)
                    .run(|_| async {
                        let receipt = pay(&runs, 700).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        receipt
                    })
                    .await
            })
        })
        .collect();
    let (mut executed, mut replayed, mut in_flight) = (0, 0, 0);
    for task in tasks {
        match task.await.expect("a racer panicked") {
            Ok(Called::Executed(r)) => {
                assert_eq!(r.id, "run-0");
                executed += 1;
            }
            Ok(Called::Replayed(r)) => {
                assert_eq!(r.id, "run-0", "a replay of another run's value");
                replayed += 1;
            }
            Err(CallError::InFlight { retry_after }) => {
                assert!(retry_after >= Duration::from_secs(1), "{retry_after:?}");
                in_flight += 1;
            }
            other => panic!("a racer got {other:?}"),
        }
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the handler ran more than once"
    );
    assert_eq!(
        executed, 1,
        "{executed} executed, {replayed} replayed, {in_flight} in flight"
    );
    assert_eq!(executed + replayed + in_flight, RACERS);
}

/// By default an error releases the key: the caller gets it, and the next
/// call runs the handler again.
pub async fn call_error_releases_the_key(s: &Subject) {
    let (engine, key, runs) = (engine(s), s.fresh_key(), AtomicUsize::new(0));
    let input = transfer(900);
    let failed = engine
        .call(&key, &input)
        .run(|_| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Err::<Receipt, _>(TransferError::BankDown)
        })
        .await;
    assert!(
        matches!(failed, Err(CallError::Handler(TransferError::BankDown))),
        "{failed:?}"
    );
    assert!(
        !s.store().exists(&key).await.unwrap(),
        "an error must release the key"
    );
    let retry = engine.call(&key, &input).run(|_| pay(&runs, 900)).await;
    assert!(
        matches!(retry, Ok(Called::Executed(ref r)) if r.id == "run-1"),
        "the retry must run again: {retry:?}"
    );
}

/// An error the policy keeps is replayed: a retry gets the same error back
/// without running the handler; an error it does not keep still releases.
pub async fn call_error_kept_by_the_policy_is_replayed(s: &Subject) {
    let (engine, key, runs) = (engine(s), s.fresh_key(), AtomicUsize::new(0));
    let input = transfer(1_000);
    let policy =
        KeepErrorsIf(|e: &TransferError| matches!(e, TransferError::InsufficientFunds { .. }));
    let declined = TransferError::InsufficientFunds { missing: 10 };
    let call = || engine.call(&key, &input).with_error_policy(policy);
    let first = call()
        .run(|_| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Err::<Receipt, _>(declined.clone())
        })
        .await;
    assert!(
        matches!(first, Err(CallError::Handler(ref e)) if *e == declined),
        "{first:?}"
    );
    for _ in 0..2 {
        let retry = call().run(|_| pay(&runs, 1_000)).await;
        assert!(
            matches!(retry, Err(CallError::Replayed(ref e)) if *e == declined),
            "a kept error must be replayed: {retry:?}"
        );
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "a kept error ran the handler again"
    );

    // The same policy releases an error it does not pick.
    let other = s.fresh_key();
    let down = engine
        .call(&other, &input)
        .with_error_policy(policy)
        .run(|_| async { Err::<Receipt, _>(TransferError::BankDown) })
        .await;
    assert!(
        matches!(down, Err(CallError::Handler(TransferError::BankDown))),
        "{down:?}"
    );
    assert!(
        !s.store().exists(&other).await.unwrap(),
        "a passing error must release the key"
    );
}

/// A record the call cannot read (a response kept by the engine for an
/// HTTP request with the same fingerprint, or a value of another type) is a
/// typed error, never a panic, and the handler does not run.
pub async fn call_on_a_record_it_cannot_read_is_a_decode_error(s: &Subject) {
    let (engine, runs) = (engine(s), AtomicUsize::new(0));
    // Another type's value under the same key and input.
    let key = s.fresh_key();
    let input = transfer(5);
    let text = engine
        .call(&key, &input)
        .run(|_| async { Ok::<_, TransferError>("not a receipt".to_owned()) })
        .await;
    assert!(matches!(text, Ok(Called::Executed(_))), "{text:?}");
    let typed = engine.call(&key, &input).run(|_| pay(&runs, 5)).await;
    assert!(matches!(typed, Err(CallError::Decode { .. })), "{typed:?}");

    // An HTTP-shaped response the engine kept for the same key and input.
    let key = s.fresh_key();
    let call = idem_core::Call::new(&engine, &key, &input);
    let fingerprint = call.fingerprint().expect("a fingerprint of the input");
    let raw = engine
        .execute(&key, fingerprint, |_| keep("paid"))
        .await
        .unwrap();
    assert!(matches!(raw, Outcome::Executed(_)), "{raw:?}");
    let http = call.run(|_| pay(&runs, 5)).await;
    assert!(matches!(http, Err(CallError::Decode { .. })), "{http:?}");

    // A kept error, read by a call whose policy keeps none.
    let key = s.fresh_key();
    let failed = engine
        .call(&key, &input)
        .with_error_policy(idem_core::KeepErrors)
        .run(|_| async { Err::<Receipt, _>(TransferError::BankDown) })
        .await;
    assert!(matches!(failed, Err(CallError::Handler(_))), "{failed:?}");
    let unread = engine.call(&key, &input).run(|_| pay(&runs, 5)).await;
    assert!(
        matches!(unread, Err(CallError::Decode { .. })),
        "{unread:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the handler ran");
}
