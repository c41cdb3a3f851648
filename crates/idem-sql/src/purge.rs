//! The optional background purge.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

/// A background task that purges expired records; aborted when dropped.
#[derive(Debug)]
pub(crate) struct PurgeTask(JoinHandle<()>);

impl PurgeTask {
    /// With an `interval`, a task that runs `purge` on a clone of `shared`
    /// every `interval` (see [`spawn`](Self::spawn)); without one, none.
    pub(crate) fn every<S, F, Fut>(
        backend: &'static str,
        interval: Option<Duration>,
        shared: &S,
        purge: F,
    ) -> Option<Arc<Self>>
    where
        S: Clone + Send + 'static,
        F: Fn(S) -> Fut + Send + 'static,
        Fut: Future<Output = idem_core::Result<u64>> + Send,
    {
        interval.map(|interval| {
            let shared = shared.clone();
            Arc::new(Self::spawn(backend, interval, move || {
                purge(shared.clone())
            }))
        })
    }

    /// Runs `purge` every `interval` (the first run after one interval) until
    /// dropped. A failed purge is logged and retried at the next tick.
    pub(crate) fn spawn<F, Fut>(backend: &'static str, interval: Duration, purge: F) -> Self
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = idem_core::Result<u64>> + Send,
    {
        let interval = interval.max(Duration::from_millis(10));
        Self(tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match purge().await {
                    Ok(n) => {
                        tracing::debug!(backend, purged = n, "purged expired idempotency records")
                    }
                    Err(e) => {
                        tracing::warn!(backend, error = %e, "purging expired idempotency records failed")
                    }
                }
            }
        }))
    }
}

impl Drop for PurgeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
