//! The moka-backed store.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use idem_core::{Claim, Error, IdempotencyStore, LeaseToken, Result, StoreKey, async_trait};
use moka::Expiry;
use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use crate::Capacity;

/// The longest TTL kept; longer ones ("never expire") are cut to it.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Bytes counted for each record on top of its key and value.
const RECORD_OVERHEAD: usize = 64;

#[derive(Clone)]
struct Slot {
    value: Bytes,
    token: Option<LeaseToken>,
    expires_at: Instant,
}

impl Slot {
    fn new(value: Bytes, token: Option<LeaseToken>, ttl: Duration) -> Self {
        let ttl = ttl.clamp(Duration::from_millis(1), MAX_TTL);
        let now = Instant::now();
        Self {
            value,
            token,
            expires_at: now
                .checked_add(ttl)
                .unwrap_or(now + Duration::from_secs(86_400)),
        }
    }

    fn is_live(&self) -> bool {
        self.expires_at > Instant::now()
    }

    fn held_by(&self, token: &LeaseToken) -> bool {
        self.is_live() && self.token.as_ref() == Some(token)
    }
}

/// Each record expires at its own instant.
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

/// An idempotency store in this process's memory, on a bounded
/// [moka](https://docs.rs/moka) cache.
///
/// Claims are atomic per key (moka's `and_compute_with` on its synchronous
/// cache: no operation awaits, so none needs the async cache), records expire at
/// their own instant, and the cache is bounded by [`Capacity`]. Records are
/// lost when the process exits, and are not shared between processes: use it
/// for tests, for one-process services, and as the tier in front of a shared
/// store. Size the capacity well above the records live at once: a claim
/// evicted for room behaves like a lease that ran out.
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
    cache: Cache<String, Slot>,
    capacity: Capacity,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity)
            .field("entries", &self.cache.entry_count())
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
        let mut builder = Cache::builder()
            .expire_after(PerRecordExpiry)
            // Admit every write: TinyLFU could refuse a new claim's record.
            .eviction_policy(EvictionPolicy::lru());
        if let Some(total) = capacity.total_weight() {
            builder = builder
                .max_capacity(total)
                .weigher(move |k: &String, v: &Slot| {
                    capacity.weigh(k.len() + v.value.len() + RECORD_OVERHEAD)
                });
        }
        Self {
            cache: builder.build(),
            capacity,
        }
    }

    /// The limits this store was built with.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    fn live(&self, slot: Option<Slot>) -> Option<Slot> {
        slot.filter(Slot::is_live)
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        Ok(self.live(self.cache.get(key.as_str())).map(|s| s.value))
    }

    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.cache
            .insert(key.as_str().to_owned(), Slot::new(value, None, ttl));
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.live(self.cache.remove(key.as_str())).is_some())
    }

    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.live(self.cache.get(key.as_str())).is_some())
    }

    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        // Fast path for replays and in-flight duplicates: a live record seen by
        // a plain read would also stop the claim below, so answer with it.
        if let Some(live) = self.live(self.cache.get(key.as_str())) {
            return Ok(Claim::Existing(live.value));
        }
        let token = LeaseToken::generate();
        let result = self
            .cache
            .entry(key.as_str().to_owned())
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().is_live() => Op::Nop,
                _ => Op::Put(Slot::new(pending, Some(token), lease)),
            });
        match result {
            CompResult::Inserted(_) | CompResult::ReplacedWith(_) => Ok(Claim::Acquired(token)),
            CompResult::Unchanged(entry) => Ok(Claim::Existing(entry.into_value().value)),
            CompResult::Removed(_) | CompResult::StillNone(_) => Err(Error::backend(
                "memory",
                "moka skipped a claim it was asked to write",
            )),
        }
    }

    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        let result = self
            .cache
            .entry(key.as_str().to_owned())
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().held_by(token) => {
                    let value = entry.into_value().value;
                    Op::Put(Slot::new(value, Some(*token), lease))
                }
                _ => Op::Nop,
            });
        match result {
            CompResult::ReplacedWith(_) => Ok(()),
            _ => Err(Error::LeaseLost),
        }
    }

    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let result = self
            .cache
            .entry(key.as_str().to_owned())
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().held_by(token) => Op::Put(Slot::new(value, None, ttl)),
                _ => Op::Nop,
            });
        match result {
            CompResult::ReplacedWith(_) => Ok(()),
            _ => Err(Error::LeaseLost),
        }
    }

    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let result = self
            .cache
            .entry(key.as_str().to_owned())
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().held_by(token) => Op::Remove,
                _ => Op::Nop,
            });
        Ok(matches!(result, CompResult::Removed(_)))
    }
}
