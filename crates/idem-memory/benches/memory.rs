//! The memory store against bare moka, in one run.
//!
//! `fresh`: a new key each iteration, bare `insert` next to the store's
//! `claim` + `complete` and the engine's whole execute. `replay`: one key read
//! over and over, bare `get` next to the store's `find` and the engine's
//! execute that ends in a replay. Compare the times in a group for the ratio.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use idem_core::{
    Claim, Completion, Fingerprint, Idempotency, IdempotencyStore, StoreKey, StoredResponse,
};
use idem_memory::MemoryStore;

const HOUR: Duration = Duration::from_secs(3600);

fn response() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![(
            "content-type".into(),
            Bytes::from_static(b"application/json"),
        )],
        body: Bytes::from(vec![b'x'; 512]),
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let counter = AtomicU64::new(0);
    let next_key = || format!("idempotency:0::{}", counter.fetch_add(1, Ordering::Relaxed));
    let value = Bytes::from(vec![b'x'; 600]);
    let fp = Fingerprint::of_request("POST", "/payments", b"{}");

    let mut fresh = c.benchmark_group("fresh");
    let bare: moka::future::Cache<String, Bytes> = moka::future::Cache::new(100_000);
    fresh.bench_function("bare_moka_insert", |b| {
        b.to_async(&rt)
            .iter(|| async { bare.insert(next_key(), value.clone()).await })
    });
    let store = MemoryStore::new();
    fresh.bench_function("store_claim_complete", |b| {
        b.to_async(&rt).iter(|| async {
            let key = StoreKey::parse(next_key()).unwrap();
            let Claim::Acquired(token) = store.claim(&key, value.clone(), HOUR).await.unwrap()
            else {
                panic!("fresh key taken")
            };
            store
                .complete(&key, &token, value.clone(), HOUR)
                .await
                .unwrap();
        })
    });
    let engine = Idempotency::new(Arc::new(MemoryStore::new()));
    fresh.bench_function("engine_execute_fresh", |b| {
        b.to_async(&rt).iter(|| async {
            let key = StoreKey::parse(next_key()).unwrap();
            let outcome = engine
                .execute(&key, fp, |_| async {
                    let r = response();
                    (r.clone(), Completion::Keep(r))
                })
                .await
                .unwrap();
            black_box(outcome);
        })
    });
    fresh.finish();

    let mut replay = c.benchmark_group("replay");
    let key = StoreKey::parse(next_key()).unwrap();
    rt.block_on(bare.insert(key.as_str().to_owned(), value.clone()));
    replay.bench_function("bare_moka_get", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(bare.get(key.as_str()).await) })
    });
    rt.block_on(store.store(&key, value.clone(), HOUR)).unwrap();
    replay.bench_function("store_find", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.find(&key).await.unwrap()) })
    });
    rt.block_on(engine.execute(&key, fp, |_| async { ((), Completion::Keep(response())) }))
        .unwrap();
    replay.bench_function("engine_execute_replay", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                engine
                    .execute(&key, fp, |_| async { ((), Completion::Release) })
                    .await
                    .unwrap(),
            )
        })
    });
    replay.finish();
}

criterion_group!(memory, benches);
criterion_main!(memory);
