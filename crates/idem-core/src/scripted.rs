//! One store for the engine's unit tests: it grants every claim, and its
//! `extend` and `complete` answer as the test scripts them.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Claim, IdempotencyStore, LeaseToken, Result, StoreKey};

/// What `complete` does, given the record the store keeps (what `find`
/// answers) and the one it is asked to keep.
type CompleteFn = dyn FnMut(&mut Option<Bytes>, Bytes) -> Result<()> + Send;
/// What `extend` answers.
type ExtendFn = dyn FnMut() -> Result<()> + Send;

/// Grants every claim; `complete` and `extend` run the test's scripts (by
/// default, `complete` keeps the record and `extend` succeeds).
pub(crate) struct Scripted {
    kept: Mutex<Option<Bytes>>,
    complete: Mutex<Box<CompleteFn>>,
    extend: Mutex<Box<ExtendFn>>,
}

impl Default for Scripted {
    fn default() -> Self {
        Self {
            kept: Mutex::default(),
            complete: Mutex::new(Box::new(|kept, value| {
                *kept = Some(value);
                Ok(())
            })),
            extend: Mutex::new(Box::new(|| Ok(()))),
        }
    }
}

impl Scripted {
    /// `complete` does `script`.
    pub(crate) fn completing(
        script: impl FnMut(&mut Option<Bytes>, Bytes) -> Result<()> + Send + 'static,
    ) -> Self {
        Self {
            complete: Mutex::new(Box::new(script)),
            ..Self::default()
        }
    }

    /// `extend` answers `script`.
    pub(crate) fn extending(script: impl FnMut() -> Result<()> + Send + 'static) -> Self {
        Self {
            extend: Mutex::new(Box::new(script)),
            ..Self::default()
        }
    }

    /// Replaces the record `find` answers.
    pub(crate) fn keep(&self, record: Bytes) {
        *self.kept.lock().unwrap() = Some(record);
    }
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripted").finish_non_exhaustive()
    }
}

#[async_trait]
impl IdempotencyStore for Scripted {
    async fn find(&self, _: &StoreKey) -> Result<Option<Bytes>> {
        Ok(self.kept.lock().unwrap().clone())
    }
    async fn store(&self, _: &StoreKey, _: Bytes, _: Duration) -> Result<()> {
        Ok(())
    }
    async fn remove(&self, _: &StoreKey) -> Result<bool> {
        Ok(false)
    }
    async fn exists(&self, _: &StoreKey) -> Result<bool> {
        Ok(false)
    }
    async fn claim(&self, _: &StoreKey, _: Bytes, _: Duration) -> Result<Claim> {
        Ok(Claim::Acquired(LeaseToken::generate()))
    }
    async fn extend(&self, _: &StoreKey, _: &LeaseToken, _: Duration) -> Result<()> {
        (self.extend.lock().unwrap())()
    }
    async fn complete(
        &self,
        _: &StoreKey,
        _: &LeaseToken,
        value: Bytes,
        _: Duration,
    ) -> Result<()> {
        let mut kept = self.kept.lock().unwrap();
        (self.complete.lock().unwrap())(&mut kept, value)
    }
    async fn release(&self, _: &StoreKey, _: &LeaseToken) -> Result<bool> {
        Ok(true)
    }
    fn backend(&self) -> &'static str {
        "scripted"
    }
}
