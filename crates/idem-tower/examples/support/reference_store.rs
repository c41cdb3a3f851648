//! A minimal store for the benchmarks' diagnostic runs: one mutex, one hash
//! map, no eviction. What the layer costs when the store costs next to nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use idem_core::{Claim, Error, IdempotencyStore, LeaseToken, Result, StoreKey, async_trait};

/// A minimal store (one mutex, one hash map, no eviction) for the diagnostic
/// route: what the layer costs when the store costs next to nothing.
#[derive(Debug, Default)]
pub(crate) struct ReferenceStore(Mutex<HashMap<String, Entry>>);

#[derive(Debug)]
struct Entry {
    value: Bytes,
    token: Option<LeaseToken>,
    expires: Instant,
}

impl Entry {
    fn live(&self) -> bool {
        self.expires > Instant::now()
    }
}

impl ReferenceStore {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl IdempotencyStore for ReferenceStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        Ok(self
            .map()
            .get(key.as_str())
            .filter(|e| e.live())
            .map(|e| e.value.clone()))
    }
    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        let entry = Entry {
            value,
            token: None,
            expires: Instant::now() + ttl,
        };
        self.map().insert(key.as_str().to_owned(), entry);
        Ok(())
    }
    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.map().remove(key.as_str()).is_some_and(|e| e.live()))
    }
    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.map().get(key.as_str()).is_some_and(Entry::live))
    }
    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        let mut map = self.map();
        if let Some(e) = map.get(key.as_str()).filter(|e| e.live()) {
            return Ok(Claim::Existing(e.value.clone()));
        }
        let token = LeaseToken::generate();
        let entry = Entry {
            value: pending,
            token: Some(token),
            expires: Instant::now() + lease,
        };
        map.insert(key.as_str().to_owned(), entry);
        Ok(Claim::Acquired(token))
    }
    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        match self.map().get_mut(key.as_str()) {
            Some(e) if e.live() && e.token == Some(*token) => {
                *e = Entry {
                    value,
                    token: None,
                    expires: Instant::now() + ttl,
                };
                Ok(())
            }
            _ => Err(Error::LeaseLost),
        }
    }
    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let mut map = self.map();
        let held = map
            .get(key.as_str())
            .is_some_and(|e| e.live() && e.token == Some(*token));
        if held {
            map.remove(key.as_str());
        }
        Ok(held)
    }
}
