//! A store blip after the handler ran must not make a key run twice.
//!
//! 200 keys, 5 identical callers each, all at once, over the memory store
//! behind a switch that makes every store call fail as unavailable for
//! 1.5 s (half the 3 s lease), from 100 ms into the run: the first
//! handlers (200 ms each) finish inside the blip, so their `complete` fails
//! at first. Callers retry with the same key, as clients do, on a store
//! error and on "in flight". The engine's completion retries must keep
//! every first result: each key runs once, and its five callers get one
//! body. The same run with the retries off (a completion bound of zero)
//! must show keys run twice, proving the check can fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use idem_core::{
    Claim, Completion, Error, Fingerprint, Idempotency, IdempotencyKey, IdempotencyStore, KeySpace,
    LeaseToken, Outcome, Result, Scope, StoreKey, StoredResponse,
};
use idem_memory::MemoryStore;

const KEYS: usize = 200;
const CALLERS: usize = 5;
const LEASE: Duration = Duration::from_secs(3);
/// The blip: from 100 ms into the run, for half the lease.
const BLIP: Duration = Duration::from_millis(1500);

/// The memory store, unavailable while `down` is set.
#[derive(Debug)]
struct Blipping {
    inner: MemoryStore,
    down: AtomicBool,
}

impl Blipping {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::unavailable("blipping", "the store is paused"))
        } else {
            Ok(())
        }
    }
}

#[idem_core::async_trait]
impl IdempotencyStore for Blipping {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        self.check()?;
        self.inner.find(key).await
    }
    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.check()?;
        self.inner.store(key, value, ttl).await
    }
    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        self.check()?;
        self.inner.remove(key).await
    }
    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        self.check()?;
        self.inner.exists(key).await
    }
    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        self.check()?;
        self.inner.claim(key, pending, lease).await
    }
    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        self.check()?;
        self.inner.extend(key, token, lease).await
    }
    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        self.check()?;
        self.inner.complete(key, token, value, ttl).await
    }
    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        self.check()?;
        self.inner.release(key, token).await
    }
}

/// What one run saw: runs per key, and the bodies each key's callers got.
struct Seen {
    runs: Vec<u32>,
    bodies: Vec<Vec<Bytes>>,
}

async fn run_with_blip(completion_bound: Duration) -> Seen {
    let store = Arc::new(Blipping {
        inner: MemoryStore::new(),
        down: AtomicBool::new(false),
    });
    let engine = Idempotency::new(store.clone())
        .with_lease(LEASE)
        .with_completion_bound(completion_bound);
    let space = KeySpace::new("blip:").unwrap();
    let keys: Vec<StoreKey> = (0..KEYS)
        .map(|i| {
            space.key(
                &Scope::global(),
                &IdempotencyKey::new(format!("k{i}")).unwrap(),
            )
        })
        .collect();
    let runs: Arc<Vec<AtomicU32>> = Arc::new((0..KEYS).map(|_| AtomicU32::new(0)).collect());
    let bodies = Arc::new(Mutex::new(HashMap::<usize, Vec<Bytes>>::new()));

    let blip = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            store.down.store(true, Ordering::SeqCst);
            tokio::time::sleep(BLIP).await;
            store.down.store(false, Ordering::SeqCst);
        })
    };
    let mut callers = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        for _ in 0..CALLERS {
            let (engine, key, runs, bodies) =
                (engine.clone(), key.clone(), runs.clone(), bodies.clone());
            callers.push(tokio::spawn(async move {
                let body = call_until_answered(&engine, &key, i, &runs).await;
                bodies.lock().unwrap().entry(i).or_default().push(body);
            }));
        }
    }
    for caller in callers {
        caller.await.unwrap();
    }
    blip.await.unwrap();
    let mut bodies = bodies.lock().unwrap();
    Seen {
        runs: runs.iter().map(|r| r.load(Ordering::SeqCst)).collect(),
        bodies: (0..KEYS)
            .map(|i| bodies.remove(&i).unwrap_or_default())
            .collect(),
    }
}

/// One caller: the same request with the same key until it gets an answer
/// from a handler run (its own or a replay), retrying on a store error and
/// while another caller's run is in flight, for at most 20 s.
async fn call_until_answered(
    engine: &Idempotency,
    key: &StoreKey,
    i: usize,
    runs: &[AtomicU32],
) -> Bytes {
    let fingerprint = Fingerprint::of_request("POST", "/pay", format!("k{i}").as_bytes());
    for _ in 0..400 {
        let outcome = engine
            .execute(key, fingerprint, |_| async {
                let run = runs[i].fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let body = Bytes::from(format!("key {i}, run {run}"));
                let response = StoredResponse {
                    status: 201,
                    headers: Vec::new(),
                    body: body.clone(),
                };
                (body, Completion::Keep(response))
            })
            .await;
        match outcome {
            Ok(Outcome::Executed(body) | Outcome::Lost(body)) => return body,
            Ok(Outcome::Replayed(response)) => return response.body,
            Ok(Outcome::InFlight { .. }) | Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(other) => panic!("key {i}: unexpected outcome {other:?}"),
        }
    }
    panic!("key {i}: no answer within 20 s");
}

fn twice(seen: &Seen) -> usize {
    seen.runs.iter().filter(|&&n| n > 1).count()
}

fn two_bodies(seen: &Seen) -> usize {
    seen.bodies
        .iter()
        .filter(|bodies| bodies.iter().any(|b| b != &bodies[0]))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blip_shorter_than_the_lease_runs_no_key_twice() {
    let seen = run_with_blip(Duration::from_secs(5)).await;
    assert!(seen.runs.iter().all(|&n| n >= 1), "every key ran");
    assert!(
        seen.bodies.iter().all(|b| b.len() == CALLERS),
        "every caller was answered"
    );
    assert_eq!(twice(&seen), 0, "keys whose handler ran twice");
    assert_eq!(two_bodies(&seen), 0, "keys whose callers got two bodies");
}

/// The proof that the check above can fail: without completion retries the
/// same blip makes keys run twice, with two answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_completion_retries_the_same_blip_runs_keys_twice() {
    let seen = run_with_blip(Duration::ZERO).await;
    assert!(
        twice(&seen) > 0,
        "no key ran twice: the blip missed the completions"
    );
    assert!(two_bodies(&seen) > 0);
}
