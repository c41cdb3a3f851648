//! The store on quick_cache.

mod stats;

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use idem_core::{
    Claim, Error, IdempotencyStore, KeySpace, LeaseToken, Result, StoreKey, StoreStats, async_trait,
};
use quick_cache::sync::{Cache, EntryAction, EntryResult};
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use crate::Capacity;

/// The longest TTL kept; longer ones ("never expire") are cut to it.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Bytes counted for each record on top of its key and value.
const RECORD_OVERHEAD: usize = 64;

/// The share of the cache for records read or rewritten since they were
/// written (quick_cache's "hot" part; the rest is a FIFO for new records).
/// A claim's record is rewritten by its completion, so finished records
/// pass through both parts and age out about oldest first; a record only
/// written (`store`, as the tier keeps one) is kept while it is among the
/// newest half. See the crate's README for the figures.
const HOT_SHARE: f64 = 0.5;

#[derive(Clone)]
struct Slot {
    value: Bytes,
    token: Option<LeaseToken>,
    expires_at: Instant,
}

impl Slot {
    /// A record written at `now` that lives for `ttl`.
    fn new(value: Bytes, token: Option<LeaseToken>, ttl: Duration, now: Instant) -> Self {
        Self {
            value,
            token,
            expires_at: deadline(now, ttl),
        }
    }

    fn is_live(&self) -> bool {
        self.is_live_at(Instant::now())
    }

    /// Whether the record is live at `now`: one reading of the clock serves
    /// a whole operation (reading it costs more than the rest of a check).
    fn is_live_at(&self, now: Instant) -> bool {
        self.expires_at > now
    }
}

/// The instant a record written at `now` with `ttl` expires.
fn deadline(now: Instant, ttl: Duration) -> Instant {
    let ttl = ttl.clamp(Duration::from_millis(1), MAX_TTL);
    now.checked_add(ttl)
        .unwrap_or(now + Duration::from_secs(86_400))
}

/// Each record weighs its share of the [`Capacity`].
#[derive(Clone, Copy)]
struct ByCapacity(Capacity);

impl Weighter<String, Slot> for ByCapacity {
    fn weight(&self, key: &String, slot: &Slot) -> u64 {
        self.0.weigh(key.len() + slot.value.len() + RECORD_OVERHEAD)
    }
}

/// Keeps an in-progress claim in the cache while its lease is live: eviction
/// passes over it, so a running handler's key is never freed for room.
#[derive(Clone, Copy)]
struct PinLiveClaims;

impl Lifecycle<String, Slot> for PinLiveClaims {
    type RequestState = ();

    fn is_pinned(&self, _: &String, slot: &Slot) -> bool {
        slot.token.is_some() && slot.is_live()
    }
}

type Engine = Cache<String, Slot, ByCapacity, DefaultHashBuilder, PinLiveClaims>;

/// An idempotency store in this process's memory, on a bounded
/// [quick_cache](https://docs.rs/quick_cache) cache.
///
/// Claims are atomic per key (quick_cache's `entry`, which decides under the
/// key's shard lock; no operation awaits), records expire at their own
/// instant, and the cache is bounded by [`Capacity`]. A live in-progress
/// claim is pinned: eviction never takes it, so only its lease ends it.
/// Records are lost when the process exits, and are not shared between
/// processes: use it for tests, for one-process services, and as the tier in
/// front of a shared store.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idem_core::Result<()> {
/// use std::time::Duration;
/// use idem_core::{IdempotencyStore, StoreKey};
/// use idem_memory::MemoryStore;
///
/// let store = MemoryStore::new();
/// let key = StoreKey::parse("order:42")?;
/// store.store(&key, "done".into(), Duration::from_secs(60)).await?;
/// assert_eq!(store.find(&key).await?.as_deref(), Some(&b"done"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    cache: std::sync::Arc<Engine>,
    capacity: Capacity,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity)
            .field("entries", &self.cache.len())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with the default [`Capacity`] (100 000 records, 256 MiB).
    pub fn new() -> Self {
        Self::with_capacity(Capacity::default())
    }

    /// A store bounded by `capacity`.
    ///
    /// # Examples
    /// ```
    /// use idem_memory::{Capacity, MemoryStore};
    /// let store = MemoryStore::with_capacity(Capacity::default().with_max_entries(1_000));
    /// # let _ = store;
    /// ```
    pub fn with_capacity(capacity: Capacity) -> Self {
        let options = OptionsBuilder::new()
            .estimated_items_capacity(capacity.expected_entries())
            .weight_capacity(capacity.total_weight())
            .hot_allocation(HOT_SHARE)
            .build()
            .expect("every option is set");
        let cache = Cache::with_options(
            options,
            ByCapacity(capacity),
            DefaultHashBuilder::default(),
            PinLiveClaims,
        );
        Self {
            cache: std::sync::Arc::new(cache),
            capacity,
        }
    }

    /// The limits this store was built with.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    /// How many records the cache holds, expired ones not yet evicted included.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Runs `on_live` on the live record under `key` (under its shard's lock)
    /// with the instant it was found live at, or returns `absent` when there
    /// is none.
    fn with_live<T>(
        &self,
        key: &StoreKey,
        absent: T,
        on_live: impl FnOnce(&mut Slot, Instant) -> EntryAction<T>,
    ) -> Result<(T, Option<Slot>)> {
        let now = Instant::now();
        let result = self.cache.entry(key.as_str(), None, |_, slot| {
            if slot.is_live_at(now) {
                on_live(slot, now)
            } else {
                EntryAction::Remove
            }
        });
        match result {
            EntryResult::Retained(t) => Ok((t, None)),
            EntryResult::Removed(_, slot) if slot.is_live_at(now) => Ok((absent, Some(slot))),
            // An expired record is dropped on the way; a vacant key is left
            // vacant (the guard goes without inserting).
            EntryResult::Removed(..) | EntryResult::Vacant(_) => Ok((absent, None)),
            EntryResult::Replaced(..) | EntryResult::Timeout => Err(Error::backend(
                "memory",
                "quick_cache answered an entry call it was not asked for",
            )),
        }
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        Ok(self
            .cache
            .get(key.as_str())
            .filter(Slot::is_live)
            .map(|s| s.value))
    }

    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.cache.insert(
            key.as_str().to_owned(),
            Slot::new(value, None, ttl, Instant::now()),
        );
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        Ok(self
            .cache
            .remove(key.as_str())
            .is_some_and(|(_, slot)| slot.is_live()))
    }

    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.cache.get(key.as_str()).is_some_and(|s| s.is_live()))
    }

    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        let token = LeaseToken::generate();
        let now = Instant::now();
        // One step under the shard's lock: a live record is answered with, an
        // expired one is taken over in place, and a vacant key gets a
        // placeholder that makes every other caller wait for this insert.
        let result = self.cache.entry(key.as_str(), None, |_, slot| {
            if slot.is_live_at(now) {
                EntryAction::Retain(Some(slot.value.clone()))
            } else {
                *slot = Slot::new(pending.clone(), Some(token), lease, now);
                EntryAction::Retain(None)
            }
        });
        match result {
            EntryResult::Retained(Some(existing)) => Ok(Claim::Existing(existing)),
            EntryResult::Retained(None) => Ok(Claim::Acquired(token)),
            EntryResult::Vacant(guard) => {
                // Pinned, so admitted whatever its weight.
                let _ = guard.insert(Slot::new(pending, Some(token), lease, now));
                Ok(Claim::Acquired(token))
            }
            EntryResult::Removed(..) | EntryResult::Replaced(..) | EntryResult::Timeout => {
                Err(Error::backend(
                    "memory",
                    "quick_cache skipped a claim it was asked to decide",
                ))
            }
        }
    }

    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        let (extended, _) = self.with_live(key, false, |slot, now| {
            let held = slot.token.as_ref() == Some(token);
            if held {
                slot.expires_at = deadline(now, lease);
            }
            EntryAction::Retain(held)
        })?;
        if extended {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let (completed, _) = self.with_live(key, false, |slot, now| {
            let held = slot.token.as_ref() == Some(token);
            if held {
                *slot = Slot::new(value, None, ttl, now);
            }
            EntryAction::Retain(held)
        })?;
        if completed {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let (_, removed) = self.with_live(key, (), |slot, _| {
            if slot.token.as_ref() == Some(token) {
                EntryAction::Remove
            } else {
                EntryAction::Retain(())
            }
        })?;
        Ok(removed.is_some())
    }

    async fn stats(&self, space: &KeySpace) -> Result<StoreStats> {
        Ok(self.count(space))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn key(i: usize) -> StoreKey {
        StoreKey::parse(format!("k:{i}")).unwrap()
    }

    async fn claim(store: &MemoryStore, i: usize, lease: Duration) -> LeaseToken {
        match store.claim(&key(i), "pending".into(), lease).await.unwrap() {
            Claim::Acquired(token) => token,
            Claim::Existing(_) => panic!("key {i} was taken"),
        }
    }

    #[tokio::test]
    async fn churn_keeps_the_bound_and_the_newest_records() {
        let store = MemoryStore::with_capacity(Capacity::unbounded().with_max_entries(1_000));
        for i in 0..20_000 {
            let token = claim(&store, i, HOUR).await;
            store
                .complete(&key(i), &token, "done".into(), HOUR)
                .await
                .unwrap();
        }
        assert!(store.len() <= 1_000, "{} records held", store.len());
        let mut kept = 0;
        for i in 19_000..20_000 {
            kept += usize::from(store.exists(&key(i)).await.unwrap());
        }
        // Oldest out first: most of the newest thousand are still there.
        assert!(kept >= 800, "only {kept} of the newest 1000 kept");
        assert!(store.exists(&key(19_999)).await.unwrap());
    }

    #[tokio::test]
    async fn live_claims_are_never_evicted_for_room() {
        let store = MemoryStore::with_capacity(Capacity::unbounded().with_max_entries(100));
        let mut tokens = Vec::new();
        for i in 0..50 {
            tokens.push(claim(&store, i, HOUR).await);
        }
        for i in 1_000..11_000 {
            store.store(&key(i), "filler".into(), HOUR).await.unwrap();
        }
        for (i, token) in tokens.iter().enumerate() {
            store
                .extend(&key(i), token, HOUR)
                .await
                .unwrap_or_else(|e| panic!("claim {i} was evicted: {e}"));
        }
    }

    #[tokio::test]
    async fn an_expired_claim_is_evicted_like_any_record() {
        let store = MemoryStore::with_capacity(Capacity::unbounded().with_max_entries(100));
        let token = claim(&store, 0, Duration::from_millis(1)).await;
        std::thread::sleep(Duration::from_millis(5));
        for i in 1_000..11_000 {
            store.store(&key(i), "filler".into(), HOUR).await.unwrap();
        }
        assert!(store.len() <= 100);
        assert!(matches!(
            store.extend(&key(0), &token, HOUR).await,
            Err(Error::LeaseLost)
        ));
    }

    #[tokio::test]
    async fn the_byte_bound_holds() {
        let store = MemoryStore::with_capacity(Capacity::unbounded().with_max_bytes(1 << 20));
        let value = Bytes::from(vec![b'x'; 1_000]);
        for i in 0..10_000 {
            store.store(&key(i), value.clone(), HOUR).await.unwrap();
        }
        let per_record = 1_000 + RECORD_OVERHEAD + "k:1000".len();
        assert!(
            store.len() * per_record <= 1 << 20,
            "{} records",
            store.len()
        );
        assert!(store.len() >= 500, "{} records", store.len());
    }
}
