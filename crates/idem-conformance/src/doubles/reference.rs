//! The contract kept in the plainest way: one mutex over one hash map.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use idem_core::{
    Claim, Error, IdempotencyStore, LeaseToken, PurgeExpired, Result, StoreKey, async_trait,
};

/// The longest lifetime a record gets: a longer TTL (up to `Duration::MAX`,
/// "never expire") is kept as this one, so that no deadline overflows.
const FOREVER: Duration = Duration::from_secs(1 << 32);

/// A store that keeps the contract in the plainest way: one mutex over one
/// hash map, every operation atomic under the lock, expiry checked on read,
/// and expired records left in place until [`PurgeExpired::purge_expired`]
/// deletes them. It passes the conformance suite.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use idem_conformance::doubles::ReferenceStore;
/// use idem_core::{Claim, IdempotencyStore, StoreKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = ReferenceStore::new();
/// let key = StoreKey::parse("orders:1234").unwrap();
/// let hour = Duration::from_secs(3600);
/// let claim = store.claim(&key, Bytes::from_static(b"pending"), hour).await.unwrap();
/// assert!(matches!(claim, Claim::Acquired(_)));
/// assert_eq!(store.find(&key).await.unwrap().as_deref(), Some(&b"pending"[..]));
/// # }
/// ```
#[derive(Debug, Default)]
pub struct ReferenceStore {
    records: Mutex<HashMap<String, Record>>,
}

#[derive(Debug)]
struct Record {
    value: Bytes,
    /// The lease token of an in-progress claim; `None` once completed or stored.
    token: Option<LeaseToken>,
    expires_at: Instant,
}

impl Record {
    fn new(value: Bytes, token: Option<LeaseToken>, ttl: Duration) -> Self {
        Self {
            value,
            token,
            expires_at: Instant::now() + ttl.min(FOREVER),
        }
    }

    fn is_live(&self) -> bool {
        self.expires_at > Instant::now()
    }

    fn is_held_by(&self, token: &LeaseToken) -> bool {
        self.is_live() && self.token.as_ref() == Some(token)
    }
}

impl ReferenceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Deletes every record, live or expired, and returns how many there were.
    pub fn clear(&self) -> u64 {
        let mut records = self.records();
        let count = records.len() as u64;
        records.clear();
        count
    }

    fn records(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        // A panic elsewhere under the lock leaves the map consistent: every
        // change is a single insert or remove.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self, key: &StoreKey) -> Option<Bytes> {
        let records = self.records();
        let record = records.get(key.as_str()).filter(|r| r.is_live())?;
        Some(record.value.clone())
    }
}

#[async_trait]
impl IdempotencyStore for ReferenceStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        Ok(self.live(key))
    }

    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        let record = Record::new(value, None, ttl);
        self.records().insert(key.as_str().to_owned(), record);
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        let removed = self.records().remove(key.as_str());
        Ok(removed.is_some_and(|r| r.is_live()))
    }

    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.live(key).is_some())
    }

    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        let mut records = self.records();
        if let Some(record) = records.get(key.as_str()).filter(|r| r.is_live()) {
            return Ok(Claim::Existing(record.value.clone()));
        }
        let token = LeaseToken::generate();
        let record = Record::new(pending, Some(token), lease);
        records.insert(key.as_str().to_owned(), record);
        Ok(Claim::Acquired(token))
    }

    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        match self.records().get_mut(key.as_str()) {
            Some(record) if record.is_held_by(token) => {
                record.expires_at = Instant::now() + lease.min(FOREVER);
                Ok(())
            }
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
        match self.records().get_mut(key.as_str()) {
            Some(record) if record.is_held_by(token) => {
                *record = Record::new(value, None, ttl);
                Ok(())
            }
            _ => Err(Error::LeaseLost),
        }
    }

    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let mut records = self.records();
        let held = records
            .get(key.as_str())
            .is_some_and(|r| r.is_held_by(token));
        if held {
            records.remove(key.as_str());
        }
        Ok(held)
    }
}

#[async_trait]
impl PurgeExpired for ReferenceStore {
    async fn purge_expired(&self) -> Result<u64> {
        let mut records = self.records();
        let before = records.len();
        records.retain(|_, record| record.is_live());
        Ok((before - records.len()) as u64)
    }
}
