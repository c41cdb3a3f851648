//! The memory store's engine, chosen side by side: the same store contract
//! (atomic claim, fenced completion, per-record expiry, bounded entries and
//! bytes) on each candidate, under eviction churn.
//!
//! - `moka_expiry`: moka's sync cache with LRU and per-entry expiry, claims
//!   by `and_compute_with` (idem-memory's engine before quick_cache);
//! - `moka_plain`: moka used differently, without per-entry expiry (records
//!   carry their deadline and reads check it), claims as above;
//! - `quick_cache`: [`MemoryStore`] as it ships (quick_cache's `entry`,
//!   live claims pinned by its `Lifecycle`), called through the store trait.
//!
//! Criterion groups: `fresh` (claim + complete of a new key, the store
//! bounded at 100 000 records and already full, so every write evicts),
//! `replay` (a claim that meets a completed record, as a replay does).
//!
//! Before the groups, two figures per engine, each from a child process of
//! its own (so one engine's freed memory does not hide the next one's):
//! `retained`, how many of the newest 100 000 keys are still there after
//! 1 000 000 claim + complete into a store bounded at 100 000; and `memory`,
//! the resident-set growth per record after 1 000 000 completed records of
//! a realistic size (a 160-byte JSON body), in a store big enough to keep
//! them all. `IDEM_ENGINE_FIGURES=0` skips them.
//!
//! For instruction counts, which stay put on a busy machine, run the binary
//! with `IDEM_ENGINE_CHILD=ops:<engine>` under
//! `valgrind --tool=callgrind --toggle-collect='*measured_*'`: it fills a
//! store bounded at 10 000 records with 20 000, then does 10 000 fresh
//! claim + complete (`measured_fresh`) and 10 000 replay claims
//! (`measured_replay`).

use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::Criterion;
use futures::FutureExt;
use idem_core::{
    Claim, Fingerprint, IdempotencyStore, LeaseToken, Record, RecordState, StoreKey, StoredResponse,
};
use idem_memory::{Capacity, MemoryStore};
use moka::Expiry;
use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;

const HOUR: Duration = Duration::from_secs(3600);
const BOUND: u64 = 100_000;
const CHURN: u64 = 1_000_000;
const ENGINES: [&str; 3] = ["moka_expiry", "moka_plain", "quick_cache"];

/// The operations the benchmark needs, on any engine.
trait Engine: Sync {
    fn claim(&self, key: &StoreKey, pending: &Bytes) -> Option<LeaseToken>;
    fn complete(&self, key: &StoreKey, token: &LeaseToken, value: &Bytes) -> bool;
    fn find(&self, key: &StoreKey) -> Option<Bytes>;
    fn store(&self, key: &StoreKey, value: &Bytes);
}

#[derive(Clone)]
struct Slot {
    value: Bytes,
    token: Option<LeaseToken>,
    expires_at: Instant,
}

impl Slot {
    fn new(value: &Bytes, token: Option<LeaseToken>) -> Self {
        Self {
            value: value.clone(),
            token,
            expires_at: Instant::now() + HOUR,
        }
    }
    fn is_live(&self) -> bool {
        self.expires_at > Instant::now()
    }
}

struct PerRecordExpiry;

impl Expiry<String, Slot> for PerRecordExpiry {
    fn expire_after_create(&self, _: &String, slot: &Slot, now: Instant) -> Option<Duration> {
        Some(slot.expires_at.saturating_duration_since(now))
    }
    fn expire_after_update(
        &self,
        _: &String,
        slot: &Slot,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.expires_at.saturating_duration_since(now))
    }
}

/// moka's sync cache, with or without per-entry expiry.
struct Moka(moka::sync::Cache<String, Slot>);

impl Moka {
    fn new(capacity: Capacity, expiry: bool) -> Self {
        let bound = capacity.max_entries().unwrap_or(u64::MAX);
        let bytes = capacity.max_bytes().unwrap_or(u64::MAX);
        // Both bounds as one weight, as idem-memory did on moka.
        let scale = u64::from(u32::MAX);
        let mut builder = moka::sync::Cache::builder()
            .eviction_policy(EvictionPolicy::lru())
            .max_capacity(scale)
            .weigher(move |k: &String, v: &Slot| {
                let by_count = scale / bound.max(1);
                let size = (k.len() + v.value.len() + 64) as u64;
                let by_bytes = (u128::from(size) * u128::from(scale) / u128::from(bytes)) as u64;
                by_count.max(by_bytes).clamp(1, scale) as u32
            });
        if expiry {
            builder = builder.expire_after(PerRecordExpiry);
        }
        Self(builder.build())
    }
}

impl Engine for Moka {
    fn claim(&self, key: &StoreKey, pending: &Bytes) -> Option<LeaseToken> {
        let token = LeaseToken::generate();
        let result =
            self.0
                .entry(key.as_str().to_owned())
                .and_compute_with(|current| match current {
                    Some(entry) if entry.value().is_live() => Op::Nop,
                    _ => Op::Put(Slot::new(pending, Some(token))),
                });
        matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        )
        .then_some(token)
    }

    fn complete(&self, key: &StoreKey, token: &LeaseToken, value: &Bytes) -> bool {
        let result =
            self.0
                .entry(key.as_str().to_owned())
                .and_compute_with(|current| match current {
                    Some(e) if e.value().is_live() && e.value().token.as_ref() == Some(token) => {
                        Op::Put(Slot::new(value, None))
                    }
                    _ => Op::Nop,
                });
        matches!(result, CompResult::ReplacedWith(_))
    }

    fn find(&self, key: &StoreKey) -> Option<Bytes> {
        self.0
            .get(key.as_str())
            .filter(Slot::is_live)
            .map(|s| s.value)
    }

    fn store(&self, key: &StoreKey, value: &Bytes) {
        self.0
            .insert(key.as_str().to_owned(), Slot::new(value, None));
    }
}

/// The shipped store, through its trait (its futures are ready at once).
struct Store(MemoryStore);

fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    f.now_or_never().expect("the memory store never waits")
}

impl Engine for Store {
    fn claim(&self, key: &StoreKey, pending: &Bytes) -> Option<LeaseToken> {
        match now(self.0.claim(key, pending.clone(), HOUR)).expect("claim") {
            Claim::Acquired(token) => Some(token),
            Claim::Existing(_) => None,
        }
    }

    fn complete(&self, key: &StoreKey, token: &LeaseToken, value: &Bytes) -> bool {
        now(self.0.complete(key, token, value.clone(), HOUR)).is_ok()
    }

    fn find(&self, key: &StoreKey) -> Option<Bytes> {
        now(self.0.find(key)).expect("find")
    }

    fn store(&self, key: &StoreKey, value: &Bytes) {
        now(self.0.store(key, value.clone(), HOUR)).expect("store");
    }
}

fn engine(name: &str, capacity: Capacity) -> Box<dyn Engine> {
    match name {
        "moka_expiry" => Box::new(Moka::new(capacity, true)),
        "moka_plain" => Box::new(Moka::new(capacity, false)),
        "quick_cache" => Box::new(Store(MemoryStore::with_capacity(capacity))),
        other => panic!("no engine {other}"),
    }
}

fn bounded() -> Capacity {
    Capacity::default().with_max_entries(BOUND)
}

/// A storage key as the layer makes them: prefix, scope, a UUID-sized key.
fn key(i: u64) -> StoreKey {
    StoreKey::parse(format!("idempotency:global:bench-{i:032}")).expect("a valid key")
}

/// The record a fresh request writes at first, and its final one: a 201
/// with a JSON content type and a 160-byte body.
fn records() -> (Bytes, Bytes, usize) {
    let fp = Fingerprint::of_request("POST", "/payments", b"{\"amount\":\"99.99\"}");
    let pending = Record::in_progress(fp, Duration::from_secs(10)).encode();
    let response = StoredResponse {
        status: 201,
        headers: vec![(
            "content-type".into(),
            Bytes::from_static(b"application/json"),
        )],
        body: Bytes::from(vec![b'x'; 160]),
    };
    let size = response.size();
    let done = Record::new(fp, RecordState::Completed(response), HOUR).encode();
    (pending, done, size)
}

fn fresh(e: &dyn Engine, i: u64, pending: &Bytes, done: &Bytes) {
    let key = key(i);
    let token = e.claim(&key, pending).expect("a fresh key is free");
    assert!(e.complete(&key, &token, done));
}

#[inline(never)]
fn measured_fresh(e: &dyn Engine, from: u64, n: u64, pending: &Bytes, done: &Bytes) {
    for i in from..from + n {
        fresh(e, i, pending, done);
    }
}

#[inline(never)]
fn measured_replay(e: &dyn Engine, hit: &StoreKey, n: u64, pending: &Bytes) {
    for _ in 0..n {
        assert!(e.claim(hit, pending).is_none());
    }
}

/// Child process: the operations alone, for an instruction count.
fn ops(name: &str) {
    let (pending, done, _) = records();
    let e = engine(name, Capacity::default().with_max_entries(10_000));
    for i in 0..20_000 {
        fresh(&*e, i, &pending, &done);
    }
    measured_fresh(&*e, 20_000, 10_000, &pending, &done);
    measured_replay(&*e, &key(29_999), 10_000, &pending);
}

/// Child process: how many of the newest `BOUND` keys survive `CHURN`
/// claim + complete, and `CHURN` plain writes (`store`, as the tier in
/// front of a shared store writes).
fn retained(name: &str) {
    let (pending, done, _) = records();
    let newest = |e: &dyn Engine| {
        (CHURN - BOUND..CHURN)
            .filter(|&i| e.find(&key(i)).is_some())
            .count()
    };
    let e = engine(name, bounded());
    for i in 0..CHURN {
        fresh(&*e, i, &pending, &done);
    }
    let claimed = newest(&*e);
    let e = engine(name, bounded());
    for i in 0..CHURN {
        e.store(&key(i), &done);
    }
    println!("{claimed} {}", newest(&*e));
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

/// Child process: resident bytes per completed record, with `CHURN` of them.
fn memory(name: &str) {
    let (pending, done, _) = records();
    let capacity = Capacity::unbounded()
        .with_max_entries(CHURN * 2)
        .with_max_bytes(4 << 30);
    let before = resident_bytes();
    let e = engine(name, capacity);
    for i in 0..CHURN {
        // Each record its own allocation, as each request encodes its own.
        let value = Bytes::copy_from_slice(&done);
        fresh(&*e, i, &pending, &value);
    }
    let per_record = (resident_bytes() - before) as f64 / CHURN as f64;
    let held = (0..CHURN).filter(|&i| e.find(&key(i)).is_some()).count();
    println!("{per_record:.0} {held}");
}

/// Runs this binary again as a child for one figure.
fn child(figure: &str, name: &str) -> String {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env("IDEM_ENGINE_CHILD", format!("{figure}:{name}"))
        .output()
        .expect("the child runs");
    assert!(out.status.success(), "{figure} {name} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn figures() {
    let (pending, done, response) = records();
    println!(
        "records: pending {} bytes, completed {} bytes (response {response} bytes), key {} bytes",
        pending.len(),
        done.len(),
        key(0).as_str().len()
    );
    for name in ENGINES {
        let kept = child("retained", name);
        let (claimed, stored) = kept.split_once(' ').unwrap_or((&kept, "?"));
        let memory = child("memory", name);
        let mut parts = memory.split_whitespace();
        let per_record: f64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
        let held = parts.next().unwrap_or("?");
        println!(
            "{name:<12} newest {BOUND} kept after {CHURN} claim + complete: {claimed:>6}, \
             after {CHURN} store: {stored:>6}; \
             memory {per_record:>5.0} B/record ({held} held), {:>5.0} B beyond the response",
            per_record - response as f64
        );
    }
}

fn benches(c: &mut Criterion) {
    let (pending, done, _) = records();
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("fresh");
    for name in ENGINES {
        let e = engine(name, bounded());
        // Full before measuring, so every write evicts.
        for _ in 0..BOUND * 2 {
            fresh(
                &*e,
                counter.fetch_add(1, Ordering::Relaxed),
                &pending,
                &done,
            );
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                fresh(
                    &*e,
                    counter.fetch_add(1, Ordering::Relaxed),
                    &pending,
                    &done,
                )
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("replay");
    for name in ENGINES {
        let e = engine(name, bounded());
        for i in 0..BOUND * 2 {
            fresh(&*e, u64::MAX - i, &pending, &done);
        }
        let hit = key(u64::MAX);
        group.bench_function(name, |b| {
            b.iter(|| black_box(e.claim(&hit, &pending)).is_none())
        });
    }
    group.finish();
}

fn main() {
    if let Ok(job) = std::env::var("IDEM_ENGINE_CHILD") {
        match job.split_once(':') {
            Some(("retained", name)) => retained(name),
            Some(("memory", name)) => memory(name),
            Some(("ops", name)) => ops(name),
            _ => panic!("unknown child job {job}"),
        }
        return;
    }
    if std::env::var("IDEM_ENGINE_FIGURES").as_deref() != Ok("0") {
        figures();
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
