//! Counting the records, for operators ([`IdempotencyStore::stats`]).
//!
//! [`IdempotencyStore::stats`]: idem_core::IdempotencyStore::stats

use idem_core::{KeySpace, StoreStats};

use super::MemoryStore;

impl MemoryStore {
    /// The live records under `space`'s prefix, by state: one pass over
    /// the cache (O(n), each shard read-locked in turn). Expired records
    /// are dropped by the cache itself, so none is counted as kept.
    pub(super) fn count(&self, space: &KeySpace) -> StoreStats {
        let (mut in_progress, mut completed) = (0, 0);
        for (key, slot) in self.cache.iter() {
            if !key.starts_with(space.prefix()) || !slot.is_live() {
                continue;
            }
            if slot.token.is_some() {
                in_progress += 1;
            } else {
                completed += 1;
            }
        }
        StoreStats::new(in_progress, completed)
    }
}
