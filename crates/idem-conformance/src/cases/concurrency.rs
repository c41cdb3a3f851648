//! Races: many tasks on one key, many keys at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use idem_core::{Claim, Completion, Fingerprint, Idempotency, Outcome, StoredResponse};
use tokio::sync::Barrier;

use crate::Subject;

const RACERS: usize = 64;
const ROUNDS: usize = 20;

/// 64 tasks claim one fresh key at the same instant, 20 rounds over: each
/// round has exactly one winner, and every loser sees the winner's bytes.
pub async fn racing_claims_have_exactly_one_winner(s: &Subject) {
    for round in 0..ROUNDS {
        let key = s.fresh_key();
        let barrier = Arc::new(Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|i| {
                let (store, key, barrier) = (s.store().clone(), key.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let mine = Bytes::from(format!("racer-{i}"));
                    (
                        i,
                        store
                            .claim(&key, mine, Duration::from_secs(60))
                            .await
                            .unwrap(),
                    )
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut seen = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (i, Claim::Acquired(_)) => winners.push(i),
                (_, Claim::Existing(bytes)) => seen.push(bytes),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {} winners: {winners:?}",
            winners.len()
        );
        let expected = format!("racer-{}", winners[0]);
        assert!(
            seen.iter().all(|b| b == expected.as_bytes()),
            "round {round}: a loser saw another record than the winner's"
        );
    }
}

/// 64 identical requests race through the engine: the handler runs once, and
/// every other request is told in-flight or gets the replay.
pub async fn racing_requests_run_the_handler_once(s: &Subject) {
    let engine = Idempotency::new(s.store().clone());
    let key = s.fresh_key();
    let fp = Fingerprint::of_request("POST", "/payments", b"{}");
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (engine, key, runs, barrier) =
                (engine.clone(), key.clone(), runs.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                engine
                    .execute(&key, fp, |_| async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let r = StoredResponse {
                            status: 201,
                            ..Default::default()
                        };
                        ((), Completion::Keep(r))
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut executed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Outcome::Executed(()) => executed += 1,
            Outcome::InFlight { .. } | Outcome::Replayed(_) => {}
            other => panic!("unexpected outcome in a race of identical requests: {other:?}"),
        }
    }
    assert_eq!(executed, 1);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the handler ran more than once"
    );
}

/// 200 keys, 16 at a time, each claimed, completed and read back with its
/// own value: no key sees another's.
pub async fn many_keys_in_parallel(s: &Subject) {
    let keys: Vec<_> = (0..200).map(|_| s.fresh_key()).collect();
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let tasks: Vec<_> = keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let (store, limit) = (s.store().clone(), limit.clone());
            tokio::spawn(async move {
                let _permit = limit.acquire().await.unwrap();
                let hour = Duration::from_secs(3600);
                let Claim::Acquired(token) = store.claim(&key, Bytes::new(), hour).await.unwrap()
                else {
                    panic!("fresh key {i} was taken");
                };
                let value = Bytes::from(format!("value-{i}"));
                store
                    .complete(&key, &token, value.clone(), hour)
                    .await
                    .unwrap();
                assert_eq!(
                    store.find(&key).await.unwrap(),
                    Some(value),
                    "key {i} read another value"
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}
