//! Bounding the cache by entries and by bytes at once.
//!
//! The cache bounds one number, the total weight. To bound two, each entry weighs
//! the larger of its share of the entry limit and its share of the byte limit,
//! in units of [`SCALE`]: the total stays under `SCALE` only while both the
//! entry count and the byte count stay under their limits.

/// Total weight of a full cache.
const SCALE: u64 = u32::MAX as u64;

/// How much a [`crate::MemoryStore`] may hold. Whichever limit is reached first
/// evicts the least recently used records.
///
/// # Examples
/// ```
/// use idem_memory::Capacity;
/// let cap = Capacity::default().with_max_entries(10_000).with_max_bytes(64 << 20);
/// assert_eq!(cap.max_entries(), Some(10_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
}

impl Default for Capacity {
    /// 100 000 records and 256 MiB.
    fn default() -> Self {
        Self {
            max_entries: Some(100_000),
            max_bytes: Some(256 << 20),
        }
    }
}

impl Capacity {
    /// No limit at all: only expiry removes records.
    pub fn unbounded() -> Self {
        Self {
            max_entries: None,
            max_bytes: None,
        }
    }

    /// Caps the number of records (at least 1).
    pub fn with_max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n.max(1));
        self
    }

    /// Caps the bytes held, counting keys, values and a fixed overhead per record.
    pub fn with_max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = Some(n.max(1));
        self
    }

    /// The entry limit.
    pub fn max_entries(&self) -> Option<u64> {
        self.max_entries
    }

    /// The byte limit.
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    /// The total weight the cache may hold: [`SCALE`], or no limit when
    /// unbounded.
    pub(crate) fn total_weight(&self) -> u64 {
        if self.max_entries.is_some() || self.max_bytes.is_some() {
            SCALE
        } else {
            u64::MAX
        }
    }

    /// How many records to size the cache's tables for at first.
    pub(crate) fn expected_entries(&self) -> usize {
        self.max_entries.map_or(4096, |n| n.min(1 << 20) as usize)
    }

    /// The weight of one record of `bytes` bytes.
    pub(crate) fn weigh(&self, bytes: usize) -> u64 {
        let by_count = self.max_entries.map_or(0, |n| SCALE / n);
        let by_bytes = self
            .max_bytes
            .map_or(0, |n| bytes as u128 * SCALE as u128 / n as u128);
        by_count.max(by_bytes.min(SCALE as u128) as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_respect_both_limits() {
        let cap = Capacity::unbounded()
            .with_max_entries(100)
            .with_max_bytes(1000);
        // 100 tiny entries fill the count.
        assert!(cap.weigh(1) * 100 <= SCALE);
        assert!(cap.weigh(1) * 101 > SCALE);
        // 10 entries of 100 bytes fill the bytes.
        assert!(cap.weigh(100) * 10 <= SCALE);
        assert!(cap.weigh(100) * 11 > SCALE);
        // Unbounded: every record weighs 1 against no limit.
        assert_eq!(Capacity::unbounded().weigh(1 << 30), 1);
        assert_eq!(Capacity::unbounded().total_weight(), u64::MAX);
    }
}
