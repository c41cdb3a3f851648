//! Conveniences over any store, so backends do not have to write them.

use async_trait::async_trait;

use crate::{IdempotencyStore, Record, Result, StoreKey};

/// Helpers available on every [`IdempotencyStore`].
#[async_trait]
pub trait IdempotencyStoreExt: IdempotencyStore {
    /// Reads and decodes the live record under `key`.
    ///
    /// # Errors
    /// The store's error, or [`crate::Error::CorruptRecord`] when the bytes are
    /// not a record.
    async fn find_record(&self, key: &StoreKey) -> Result<Option<Record>> {
        match self.find(key).await? {
            Some(bytes) => Record::decode(&bytes).map(Some),
            None => Ok(None),
        }
    }
}

impl<S: IdempotencyStore + ?Sized> IdempotencyStoreExt for S {}
