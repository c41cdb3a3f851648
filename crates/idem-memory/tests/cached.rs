//! The memory tier: what it serves, what it never keeps, and how long.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use idem_core::{
    Claim, Completion, Fingerprint, Idempotency, IdempotencyStore, LeaseToken, Outcome, Result,
    StoreKey, StoredResponse, async_trait,
};
use idem_memory::{CachedStore, MemoryStore, TierConfig};

/// A store that counts every call that reaches it.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    calls: AtomicUsize,
}

impl Counting {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl IdempotencyStore for Counting {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        self.hit();
        self.inner.find(key).await
    }
    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.hit();
        self.inner.store(key, value, ttl).await
    }
    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        self.hit();
        self.inner.remove(key).await
    }
    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        self.hit();
        self.inner.exists(key).await
    }
    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        self.hit();
        self.inner.claim(key, pending, lease).await
    }
    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        self.hit();
        self.inner.extend(key, token, lease).await
    }
    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        self.hit();
        self.inner.complete(key, token, value, ttl).await
    }
    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        self.hit();
        self.inner.release(key, token).await
    }
}

fn key() -> StoreKey {
    StoreKey::parse(format!("tier-test:{}", uuid_like())).unwrap()
}

fn uuid_like() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) + std::process::id() as u64 * 1_000_000
}

async fn pay(_: idem_core::LeaseSignal) -> (StoredResponse, Completion) {
    let r = StoredResponse {
        status: 201,
        headers: vec![],
        body: Bytes::from_static(b"paid"),
    };
    (r.clone(), Completion::Keep(r))
}

#[tokio::test]
async fn a_replay_is_served_from_the_tier_without_a_round_trip() {
    let shared = Arc::new(Counting::default());
    let cached = Arc::new(CachedStore::new(shared.clone(), TierConfig::default()));
    let engine = Idempotency::new(cached.clone());
    let key = key();
    let fp = Fingerprint::of_request("POST", "/payments", b"{}");

    assert!(matches!(
        engine.execute(&key, fp, pay).await.unwrap(),
        Outcome::Executed(_)
    ));
    assert_eq!(
        shared.calls(),
        2,
        "a fresh request is claim + complete on the shared store"
    );

    for _ in 0..3 {
        match engine.execute(&key, fp, pay).await.unwrap() {
            Outcome::Replayed(r) => assert_eq!(r.body, "paid"),
            other => panic!("expected a replay, got {other:?}"),
        }
    }
    assert_eq!(shared.calls(), 2, "replays reached the shared store");
    assert_eq!(cached.tier_hits(), 3);
}

#[tokio::test]
async fn an_in_flight_claim_is_never_kept() {
    let shared = Arc::new(Counting::default());
    let cached = CachedStore::new(shared.clone(), TierConfig::default());
    let key = key();
    let hour = Duration::from_secs(3600);
    let Claim::Acquired(token) = cached
        .claim(&key, Bytes::from_static(b"pending"), hour)
        .await
        .unwrap()
    else {
        panic!("fresh key taken")
    };
    // Seen through the tier, the claim still comes from the shared store...
    assert!(matches!(
        cached.claim(&key, Bytes::new(), hour).await.unwrap(),
        Claim::Existing(_)
    ));
    // ...and once the shared store lets go of it, the tier does not remember it.
    assert!(shared.release(&key, &token).await.unwrap());
    assert_eq!(cached.find(&key).await.unwrap(), None);
    assert!(matches!(
        cached.claim(&key, Bytes::new(), hour).await.unwrap(),
        Claim::Acquired(_)
    ));
    assert_eq!(cached.tier_hits(), 0);
}

#[tokio::test]
async fn a_tier_entry_never_outlives_the_record() {
    let shared: Arc<dyn IdempotencyStore> = Arc::new(MemoryStore::new());
    let engine = Idempotency::new(shared.clone()).with_retention(Duration::from_millis(300));
    let key = key();
    let fp = Fingerprint::of_request("POST", "/", b"");
    engine.execute(&key, fp, pay).await.unwrap();

    // A fresh tier fills from a read; the record has ~300 ms left, the tier 5 s.
    let cached = CachedStore::new(shared, TierConfig::default());
    assert!(cached.find(&key).await.unwrap().is_some());
    assert!(cached.find(&key).await.unwrap().is_some());
    assert_eq!(cached.tier_hits(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cached.find(&key).await.unwrap(),
        None,
        "the tier served an expired record"
    );
}

#[tokio::test]
async fn remove_drops_the_entry_and_a_remote_remove_is_bounded_by_the_tier_ttl() {
    let shared: Arc<dyn IdempotencyStore> = Arc::new(MemoryStore::new());
    let tier = TierConfig::default().with_ttl(Duration::from_millis(300));
    let cached = CachedStore::new(shared.clone(), tier);
    let hour = Duration::from_secs(3600);

    let key = key();
    cached
        .store(&key, Bytes::from_static(b"v"), hour)
        .await
        .unwrap();
    assert!(cached.remove(&key).await.unwrap());
    assert_eq!(
        cached.find(&key).await.unwrap(),
        None,
        "remove left the tier entry"
    );

    // Another app server removes the record behind this tier's back: the
    // documented caveat, bounded by the tier TTL.
    let key = self::key();
    cached
        .store(&key, Bytes::from_static(b"v"), hour)
        .await
        .unwrap();
    assert!(shared.remove(&key).await.unwrap());
    assert!(
        cached.find(&key).await.unwrap().is_some(),
        "served from the tier until it expires"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        cached.find(&key).await.unwrap(),
        None,
        "the tier outlived its TTL"
    );
}

#[tokio::test]
async fn extend_is_always_decided_by_the_shared_store() {
    let shared = Arc::new(Counting::default());
    let cached = CachedStore::new(shared.clone(), TierConfig::default());
    let hour = Duration::from_secs(3600);

    // A finished record in the tier: extend still asks the shared store,
    // whose answer (no claim there) is the one returned.
    let key = key();
    cached
        .store(&key, Bytes::from_static(b"done"), hour)
        .await
        .unwrap();
    let before = shared.calls();
    assert!(matches!(
        cached.extend(&key, &LeaseToken::generate(), hour).await,
        Err(idem_core::Error::LeaseLost)
    ));
    assert_eq!(shared.calls(), before + 1);

    // A claim taken behind the tier's back (another app server) is renewed
    // through it, and the stale finished record is not served afterwards.
    assert!(shared.remove(&key).await.unwrap());
    let Claim::Acquired(token) = shared
        .claim(&key, Bytes::from_static(b"pending"), hour)
        .await
        .unwrap()
    else {
        panic!("a removed key was taken")
    };
    cached.extend(&key, &token, hour).await.unwrap();
    assert_eq!(
        cached.find(&key).await.unwrap().as_deref(),
        Some(&b"pending"[..])
    );
    assert!(
        shared
            .complete(&key, &token, Bytes::new(), hour)
            .await
            .is_ok()
    );
}
