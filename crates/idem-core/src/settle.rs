//! Settling a claim after its handler ran: `complete` or `release`, retried
//! through transient store errors until a deadline.
//!
//! Once the handler has run, its side effect has happened; a store blip at
//! that moment must not leave the key in progress until its lease runs out
//! (a retry would then run the handler again). Both calls are fenced by the
//! lease token, so a retry can never overwrite another holder's result: at
//! worst it is refused with [`Error::LeaseLost`], which is final.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};

use crate::{Error, Result};

/// The first pause between two attempts; it doubles up to [`MAX_PAUSE`],
/// or an eighth of the time there is, if less: a blip that ends well before
/// the deadline is always followed by an attempt in time.
const MIN_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// Runs `op` until it succeeds, fails with an error that is not
/// [transient](Error::is_transient), or `deadline` passes (then the last
/// error, or [`Error::Unavailable`] if an attempt was still waiting). With
/// `deadline` already past, `op` runs once.
pub(crate) async fn until<T, F, Fut>(deadline: Instant, what: &'static str, op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        let mut op = op;
        return op().await;
    }
    let backoff = ExponentialBuilder::default()
        .with_min_delay(MIN_PAUSE)
        .with_max_delay(MAX_PAUSE.min(left / 8).max(MIN_PAUSE))
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(left));
    let attempts = op
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(Error::is_transient)
        .notify(|error, pause| {
            crate::metrics::completion_retried(what);
            tracing::debug!(%error, ?pause, "{what} failed; trying again");
        });
    match tokio::time::timeout(left, attempts).await {
        Ok(result) => result,
        Err(_) => Err(Error::unavailable(
            "engine",
            format!("{what} did not succeed within {left:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn down() -> Error {
        Error::unavailable("test", "down")
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let result = until(deadline, "op", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 3 { Err(down()) } else { Ok(n) }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_lost_lease_is_final() {
        let calls = AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let result: Result<()> = until(deadline, "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::LeaseLost)
        })
        .await;
        assert!(matches!(result, Err(Error::LeaseLost)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_deadline_bounds_a_store_that_stays_down_or_hangs() {
        let deadline = Instant::now() + Duration::from_millis(300);
        let started = Instant::now();
        let result: Result<()> = until(deadline, "op", || async { Err(down()) }).await;
        assert!(result.unwrap_err().is_transient());
        let hanging: Result<()> = until(Instant::now() + Duration::from_millis(300), "op", || {
            std::future::pending()
        })
        .await;
        assert!(hanging.unwrap_err().is_transient());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_past_deadline_means_one_attempt() {
        let calls = AtomicU32::new(0);
        let result: Result<()> = until(Instant::now(), "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(down())
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
