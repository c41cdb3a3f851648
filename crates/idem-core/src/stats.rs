//! What [`IdempotencyStore::stats`](crate::IdempotencyStore::stats) counts.

/// How many records a store holds in one key space, by state.
///
/// Counted by [`IdempotencyStore::stats`](crate::IdempotencyStore::stats):
/// live records only (an expired record is invisible), split into *in
/// progress* (claimed, holding a lease token) and *completed* (plain records,
/// written by `complete` or `store`), plus the expired records a store keeps
/// until they are purged, where it keeps any.
///
/// # Examples
/// ```
/// use idem_core::StoreStats;
/// let stats = StoreStats::new(2, 5).with_expired(7);
/// assert_eq!(stats.records(), 7);
/// assert_eq!(stats.expired, Some(7));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoreStats {
    /// Live records in progress: claimed, not yet completed or released.
    pub in_progress: u64,
    /// Live plain records: completed (or written by `store`).
    pub completed: u64,
    /// Expired records the store still keeps until a purge
    /// ([`PurgeExpired`](crate::PurgeExpired)); `None` for a store that drops
    /// them by itself (Redis, memory).
    pub expired: Option<u64>,
}

impl StoreStats {
    /// Counts of live records; no expired count.
    pub fn new(in_progress: u64, completed: u64) -> Self {
        Self {
            in_progress,
            completed,
            expired: None,
        }
    }

    /// With the count of expired records kept until a purge.
    pub fn with_expired(mut self, expired: u64) -> Self {
        self.expired = Some(expired);
        self
    }

    /// Every live record: in progress and completed.
    pub fn records(&self) -> u64 {
        self.in_progress + self.completed
    }
}
