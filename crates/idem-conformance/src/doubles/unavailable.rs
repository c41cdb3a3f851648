//! A store whose server is down.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use idem_core::{Claim, Error, IdempotencyStore, LeaseToken, Result, StoreKey, async_trait};

/// A store whose server is down: every operation fails as
/// [`Error::Unavailable`], as a real backend's does when its server refuses
/// the connection. For testing how callers (the engine, a layer) handle an
/// outage.
///
/// # Examples
/// ```
/// use idem_conformance::doubles::UnavailableStore;
/// use idem_core::{Error, IdempotencyStore, StoreKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = UnavailableStore::new();
/// let key = StoreKey::parse("orders:1234").unwrap();
/// assert!(matches!(store.exists(&key).await, Err(Error::Unavailable { .. })));
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct UnavailableStore;

impl UnavailableStore {
    /// A store whose every operation fails as unavailable.
    pub fn new() -> Self {
        Self
    }
}

fn down<T>() -> Result<T> {
    Err(Error::unavailable(
        "unavailable",
        io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused"),
    ))
}

#[async_trait]
impl IdempotencyStore for UnavailableStore {
    async fn find(&self, _: &StoreKey) -> Result<Option<Bytes>> {
        down()
    }
    async fn store(&self, _: &StoreKey, _: Bytes, _: Duration) -> Result<()> {
        down()
    }
    async fn remove(&self, _: &StoreKey) -> Result<bool> {
        down()
    }
    async fn exists(&self, _: &StoreKey) -> Result<bool> {
        down()
    }
    async fn claim(&self, _: &StoreKey, _: Bytes, _: Duration) -> Result<Claim> {
        down()
    }
    async fn extend(&self, _: &StoreKey, _: &LeaseToken, _: Duration) -> Result<()> {
        down()
    }
    async fn complete(&self, _: &StoreKey, _: &LeaseToken, _: Bytes, _: Duration) -> Result<()> {
        down()
    }
    async fn release(&self, _: &StoreKey, _: &LeaseToken) -> Result<bool> {
        down()
    }
}
