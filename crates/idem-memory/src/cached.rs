//! A memory tier in front of any store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use idem_core::{Claim, IdempotencyStore, LeaseToken, Record, Result, StoreKey, async_trait};

use crate::{Capacity, MemoryStore};

/// How long a tier entry lives at most, by default.
pub const DEFAULT_TIER_TTL: Duration = Duration::from_secs(5);

/// Settings of a [`CachedStore`]'s tier.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_memory::{Capacity, TierConfig};
/// let tier = TierConfig::default()
///     .with_ttl(Duration::from_secs(2))
///     .with_capacity(Capacity::default().with_max_entries(10_000));
/// assert_eq!(tier.ttl(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierConfig {
    ttl: Duration,
    capacity: Capacity,
}

impl Default for TierConfig {
    /// 5 s per entry at most; 10 000 entries and 64 MiB.
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TIER_TTL,
            capacity: Capacity::default()
                .with_max_entries(10_000)
                .with_max_bytes(64 << 20),
        }
    }
}

impl TierConfig {
    /// The longest a record is served from the tier (it never outlives the
    /// record's own expiry either).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How much the tier holds.
    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// The tier TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The tier capacity.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }
}

/// Any [`IdempotencyStore`] with an in-process tier in front of it, as an
/// application puts a memory cache in front of its database.
///
/// The tier keeps **finished records only**: values written by `complete` and
/// `store`, and completed records read back by `find` or `claim`. An
/// in-progress claim is never kept, so every decision about who runs a handler
/// is still made by the shared store behind; a replay, though, is answered
/// from the tier without a round trip. A tier entry lives for the shorter of
/// the tier TTL and the record's own remaining time; `remove` drops it.
///
/// # Caveat
/// With several app servers, each has its own tier: after a `remove` on one
/// server, another may still replay the removed record from its tier until its
/// entry expires, for at most the tier TTL ([`DEFAULT_TIER_TTL`], 5 s). The
/// reverse cannot happen: a tier never grants a claim.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idem_core::Result<()> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use idem_core::{IdempotencyStore, StoreKey};
/// use idem_memory::{CachedStore, MemoryStore, TierConfig};
///
/// let shared = Arc::new(MemoryStore::new()); // a Redis or SQL store in real use
/// let store = CachedStore::new(shared, TierConfig::default());
/// let key = StoreKey::parse("order:42")?;
/// store.store(&key, "done".into(), Duration::from_secs(60)).await?;
/// assert_eq!(store.find(&key).await?.as_deref(), Some(&b"done"[..]));
/// assert_eq!(store.tier_hits(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CachedStore {
    inner: Arc<dyn IdempotencyStore>,
    tier: MemoryStore,
    ttl: Duration,
    hits: Arc<AtomicU64>,
}

impl CachedStore {
    /// Puts a tier with `config` in front of `inner`.
    pub fn new(inner: Arc<dyn IdempotencyStore>, config: TierConfig) -> Self {
        Self {
            inner,
            tier: MemoryStore::with_capacity(config.capacity),
            ttl: config.ttl,
            hits: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The store behind the tier.
    pub fn inner(&self) -> &Arc<dyn IdempotencyStore> {
        &self.inner
    }

    /// How many reads the tier answered without asking the store behind.
    pub fn tier_hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    async fn tier_lookup(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        let hit = self.tier.find(key).await?;
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(hit)
    }

    async fn keep(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        let ttl = ttl.min(self.ttl);
        if ttl.is_zero() {
            return Ok(());
        }
        self.tier.store(key, value, ttl).await
    }

    /// Keeps bytes read from the store, if they are a completed record.
    async fn keep_if_finished(&self, key: &StoreKey, value: &Bytes) -> Result<()> {
        match Record::decode(value) {
            Ok(record) if record.is_completed() => {
                self.keep(key, value.clone(), record.time_to_live()).await
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl IdempotencyStore for CachedStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        if let Some(hit) = self.tier_lookup(key).await? {
            return Ok(Some(hit));
        }
        let found = self.inner.find(key).await?;
        if let Some(value) = &found {
            self.keep_if_finished(key, value).await?;
        }
        Ok(found)
    }

    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.tier.remove(key).await?;
        self.inner.store(key, value.clone(), ttl).await?;
        self.keep(key, value, ttl).await
    }

    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        self.tier.remove(key).await?;
        self.inner.remove(key).await
    }

    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        if self.tier.exists(key).await? {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        self.inner.exists(key).await
    }

    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        // A finished record in the tier means the key is taken: answer with it.
        if let Some(hit) = self.tier_lookup(key).await? {
            return Ok(Claim::Existing(hit));
        }
        let claim = self.inner.claim(key, pending, lease).await?;
        if let Claim::Existing(value) = &claim {
            self.keep_if_finished(key, value).await?;
        }
        Ok(claim)
    }

    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        // Only the shared store knows whether the claim is still held. Were
        // the tier to hold a finished record for this key, it is stale: drop it.
        self.tier.remove(key).await?;
        self.inner.extend(key, token, lease).await
    }

    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        self.inner.complete(key, token, value.clone(), ttl).await?;
        self.keep(key, value, ttl).await
    }

    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        self.tier.remove(key).await?;
        self.inner.release(key, token).await
    }

    /// The store behind counts: the tier only holds copies.
    async fn stats(&self, space: &idem_core::KeySpace) -> Result<idem_core::StoreStats> {
        self.inner.stats(space).await
    }

    /// The store behind's name: the tier is a cache in front of it.
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
