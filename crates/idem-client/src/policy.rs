//! How often and how long a call is retried, and how long to wait in between.

use std::time::Duration;

use rand::Rng;

/// The retry policy: attempts, time budget and backoff.
///
/// Backoff is exponential with full jitter: before retry `n` (the first
/// retry is number one) the client sleeps a random time between zero and
/// `min(max_delay, base_delay * 2^(n-1))`, unless the server said how long
/// to wait with `Retry-After`, which is then honoured up to
/// `max_retry_after` (a server's `409` may name the whole remaining lease of
/// the request in flight, which is a worst case, not an estimate). No attempt
/// starts after the time budget, counted from the start of the call, has run
/// out: a wait that would end past it ends the call with the last answer.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_client::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .with_max_attempts(5)
///     .with_budget(Duration::from_secs(10))
///     .with_base_delay(Duration::from_millis(100))
///     .with_max_delay(Duration::from_secs(2))
///     .with_max_retry_after(Duration::from_secs(5));
/// assert_eq!(policy.max_attempts(), 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    budget: Duration,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts within 30 s, backoff from 100 ms up to 5 s, `Retry-After`
    /// honoured up to 10 s.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            budget: Duration::from_secs(30),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// How many times one call may be sent at most, the first time included
    /// (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The total time one call may take, sleeps included; no attempt starts
    /// after it has run out.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The backoff ceiling before the first retry; it doubles on every retry.
    pub fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The largest backoff ceiling.
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The longest wait a server's `Retry-After` can impose; a longer one is
    /// shortened to this.
    pub fn with_max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// How long to wait before retry number `retry`: the jittered backoff, or
    /// the server's `Retry-After` if it asks for longer (cut to the cap). A
    /// `Retry-After: 0` never makes retries back to back.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(retry);
        match retry_after {
            Some(wait) => wait.min(self.max_retry_after).max(backoff),
            None => backoff,
        }
    }

    /// The maximum number of attempts.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The time budget of one call.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The backoff ceiling before retry number `retry` (1 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// A random delay in `0..=ceiling(retry)` (full jitter).
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let p = RetryPolicy::default()
            .with_base_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_millis(500));
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(400));
        assert_eq!(p.ceiling(4), Duration::from_millis(500));
        assert_eq!(p.ceiling(200), Duration::from_millis(500));
    }

    #[test]
    fn backoff_is_jittered_within_the_ceiling() {
        let p = RetryPolicy::default().with_base_delay(Duration::from_millis(100));
        let delays: Vec<_> = (0..200).map(|_| p.backoff(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        // Full jitter spreads the delays: not all equal, some short.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(200)));
        assert!(delays.iter().any(|d| *d != delays[0]));
    }

    #[test]
    fn retry_after_wins_up_to_its_cap() {
        let p = RetryPolicy::default()
            .with_base_delay(Duration::from_millis(1))
            .with_max_retry_after(Duration::from_secs(3));
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(60))),
            Duration::from_secs(3)
        );
        assert!(p.wait(1, None) <= Duration::from_millis(1));
    }

    #[test]
    fn at_least_one_attempt() {
        assert_eq!(
            RetryPolicy::default().with_max_attempts(0).max_attempts(),
            1
        );
    }
}
