//! Durations as the databases count them.

use std::time::Duration;

/// The longest TTL honoured: about 100 years, far from any overflow.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `ttl` in whole milliseconds, at least one (a zero TTL is rounded up).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn ttl_millis(ttl: Duration) -> i64 {
    ttl.min(MAX_TTL).as_millis().max(1) as i64
}

/// `ttl` in whole microseconds, at least one millisecond.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn ttl_micros(ttl: Duration) -> i64 {
    (ttl.min(MAX_TTL).as_micros() as i64).max(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rounds_up_and_huge_is_clamped() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_micros(Duration::ZERO), 1_000);
        assert_eq!(ttl_millis(Duration::from_millis(1500)), 1500);
        assert!(ttl_millis(Duration::MAX) > 0);
        assert!(ttl_micros(Duration::MAX) > 0);
    }
}
