//! The names of the metrics idem records through the
//! [`metrics`](https://docs.rs/metrics) facade, and the engine's own.
//!
//! idem records to whatever recorder the application installed (a
//! Prometheus, OpenTelemetry or StatsD exporter); without one, recording
//! costs next to nothing. Every name starts with `idem_`. The table of
//! series and their labels is in `idem-tower`'s README (section
//! "Metrics"); the names are here, written once, for the crates that record
//! them and for applications that tune their exporter (histogram buckets,
//! say).
//!
//! # Examples
//! ```
//! // Describe the series (units and help text) to the installed recorder.
//! idem_core::metrics::describe();
//! assert_eq!(idem_core::metrics::STORE_DURATION, "idem_store_duration_seconds");
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use metrics::Unit;

use crate::{Claim, IdempotencyStore, KeySpace, LeaseToken, Result, StoreKey, StoreStats};

/// Counter of covered requests by `outcome`: what the tower layer did with
/// each request it covered.
pub const REQUESTS: &str = "idem_requests_total";
/// Gauge of covered requests the tower layer is running now (from the
/// moment it takes one on until its result is stored or released).
pub const REQUESTS_IN_FLIGHT: &str = "idem_requests_in_flight";
/// Histogram of the engine's store calls, in seconds, by `operation` and
/// `backend`.
pub const STORE_DURATION: &str = "idem_store_duration_seconds";
/// Counter of `complete` and `release` calls tried again after a transient
/// store error, by `operation`.
pub const COMPLETION_RETRIES: &str = "idem_completion_retries_total";
/// Counter of handler results that could not be kept, by `reason`.
pub const COMPLETIONS_LOST: &str = "idem_completions_lost_total";
/// Counter of successful lease renewals.
pub const LEASE_RENEWALS: &str = "idem_lease_renewals_total";
/// Counter of leases lost while a handler ran, by `reason`.
pub const LEASES_LOST: &str = "idem_leases_lost_total";

/// Describes every series (unit and help text) to the installed recorder;
/// call it once after installing one. Recording works without it.
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        Unit::Count,
        "Requests the idempotency layer covered, by outcome"
    );
    metrics::describe_gauge!(
        REQUESTS_IN_FLIGHT,
        Unit::Count,
        "Covered requests running now, until their result is stored or released"
    );
    metrics::describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "Duration of the engine's store calls, by operation and backend"
    );
    metrics::describe_counter!(
        COMPLETION_RETRIES,
        Unit::Count,
        "complete and release calls tried again after a transient store error"
    );
    metrics::describe_counter!(
        COMPLETIONS_LOST,
        Unit::Count,
        "Handler results that could not be kept (a retry may run the handler again)"
    );
    metrics::describe_counter!(
        LEASE_RENEWALS,
        Unit::Count,
        "Successful lease renewals of running handlers"
    );
    metrics::describe_counter!(
        LEASES_LOST,
        Unit::Count,
        "Leases lost while their handler ran"
    );
}

/// Counts one more attempt at `operation` (`complete` or `release`).
pub(crate) fn completion_retried(operation: &'static str) {
    metrics::counter!(COMPLETION_RETRIES, "operation" => operation).increment(1);
}

/// Why a handler's result was not kept.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LostCompletion {
    /// The store refused the token: the lease ran out first.
    LeaseLost,
    /// The store still failed when the engine stopped trying.
    StoreError,
}

/// Counts a handler result that could not be kept.
pub(crate) fn completion_lost(reason: LostCompletion) {
    let reason = match reason {
        LostCompletion::LeaseLost => "lease_lost",
        LostCompletion::StoreError => "store_error",
    };
    metrics::counter!(COMPLETIONS_LOST, "reason" => reason).increment(1);
}

/// Counts a successful renewal.
pub(crate) fn lease_renewed() {
    metrics::counter!(LEASE_RENEWALS).increment(1);
}

/// Why a running handler's lease was lost.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LostLease {
    /// The store refused a renewal: another request holds the key.
    Refused,
    /// No renewal succeeded before the lease ran out.
    Expired,
}

/// Counts a lost lease.
pub(crate) fn lease_lost(reason: LostLease) {
    let reason = match reason {
        LostLease::Refused => "refused",
        LostLease::Expired => "expired",
    };
    metrics::counter!(LEASES_LOST, "reason" => reason).increment(1);
}

/// The store as the engine calls it: every call is timed into
/// [`STORE_DURATION`], labelled with the operation and the store's
/// [`backend`](IdempotencyStore::backend). The one place where the engine's
/// store calls are measured.
pub(crate) struct Timed {
    inner: Arc<dyn IdempotencyStore>,
    backend: &'static str,
    /// The series of each operation (in [`OPERATIONS`]' order), built once:
    /// `histogram!` would build its labels anew, on the heap, on every call.
    /// Looked up in the recorder at each call, so a recorder installed after
    /// the engine was built still gets them.
    series: [metrics::Key; OPERATIONS.len()],
}

/// The store operations, by their `operation` label; indexes of
/// [`Timed::series`].
const OPERATIONS: [&str; 9] = [
    "find", "store", "remove", "exists", "claim", "extend", "complete", "release", "stats",
];
const FIND: usize = 0;
const STORE: usize = 1;
const REMOVE: usize = 2;
const EXISTS: usize = 3;
const CLAIM: usize = 4;
const EXTEND: usize = 5;
const COMPLETE: usize = 6;
const RELEASE: usize = 7;
const STATS: usize = 8;

/// Where the store durations are recorded from, for the recorder.
static TIMED_AT: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl Timed {
    pub(crate) fn new(inner: Arc<dyn IdempotencyStore>) -> Self {
        let backend = inner.backend();
        let series = OPERATIONS.map(|operation| {
            let labels = [("operation", operation), ("backend", backend)];
            metrics::Key::from_parts(STORE_DURATION, &labels[..])
        });
        Self {
            inner,
            backend,
            series,
        }
    }

    /// The engine's calls, timed, as plain futures: the engine awaits them
    /// without the box a trait call costs, on every request.
    pub(crate) async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        self.time(FIND, self.inner.find(key)).await
    }

    /// `claim`, timed from `sent`: the instant the engine took as the
    /// lease's start, read once for both.
    pub(crate) async fn claim(
        &self,
        key: &StoreKey,
        pending: Bytes,
        lease: Duration,
        sent: Instant,
    ) -> Result<Claim> {
        let result = self.inner.claim(key, pending, lease).await;
        self.record(CLAIM, sent.elapsed());
        result
    }

    pub(crate) async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        self.time(COMPLETE, self.inner.complete(key, token, value, ttl))
            .await
    }

    pub(crate) async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        self.time(RELEASE, self.inner.release(key, token)).await
    }

    async fn time<T>(&self, operation: usize, call: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let result = call.await;
        self.record(operation, started.elapsed());
        result
    }

    fn record(&self, operation: usize, elapsed: Duration) {
        metrics::with_recorder(|recorder| {
            recorder
                .register_histogram(&self.series[operation], &TIMED_AT)
                .record(elapsed);
        });
    }
}

impl fmt::Debug for Timed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The store itself: the timing is an implementation detail.
        fmt::Debug::fmt(&self.inner, f)
    }
}

#[async_trait]
impl IdempotencyStore for Timed {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        Timed::find(self, key).await
    }
    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.time(STORE, self.inner.store(key, value, ttl)).await
    }
    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        self.time(REMOVE, self.inner.remove(key)).await
    }
    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        self.time(EXISTS, self.inner.exists(key)).await
    }
    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        Timed::claim(self, key, pending, lease, Instant::now()).await
    }
    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        self.time(EXTEND, self.inner.extend(key, token, lease))
            .await
    }
    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        Timed::complete(self, key, token, value, ttl).await
    }
    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        Timed::release(self, key, token).await
    }
    async fn stats(&self, space: &KeySpace) -> Result<StoreStats> {
        self.time(STATS, self.inner.stats(space)).await
    }
    fn backend(&self) -> &'static str {
        self.backend
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::CompositeKey;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    use super::*;
    use crate::scripted::Scripted;
    use crate::{Completion, Error, Fingerprint, Idempotency, Outcome, StoredResponse};

    /// `complete` fails with `errors`, the last first, then keeps the record.
    fn completing_after(mut errors: Vec<Error>) -> Scripted {
        Scripted::completing(move |kept, value| match errors.pop() {
            Some(error) => Err(error),
            None => {
                *kept = Some(value);
                Ok(())
            }
        })
    }

    /// `extend` fails with `errors`, the last first, then succeeds.
    fn extending_after(mut errors: Vec<Error>) -> Scripted {
        Scripted::extending(move || errors.pop().map_or(Ok(()), Err))
    }

    fn down() -> Error {
        Error::unavailable("test", "down")
    }

    /// Runs one request whose handler takes `run`, over `store`, with a
    /// 300 ms lease renewed every 100 ms.
    async fn execute(store: Scripted, run: Duration) -> Outcome<()> {
        let engine = Idempotency::new(Arc::new(store))
            .with_lease(Duration::from_millis(300))
            .with_renewal(Duration::from_millis(100))
            .with_completion_bound(Duration::from_secs(5));
        let key = StoreKey::parse("k").unwrap();
        let fp = Fingerprint::of_request("POST", "/", b"");
        engine
            .execute(&key, fp, |_| async move {
                tokio::time::sleep(run).await;
                ((), Completion::Keep(StoredResponse::default()))
            })
            .await
            .unwrap()
    }

    /// What was recorded since the last reading (a reading drains the
    /// recorder: counters start again from zero).
    fn read(snapshotter: &Snapshotter) -> Vec<(CompositeKey, DebugValue)> {
        let snapshot = snapshotter.snapshot().into_vec();
        snapshot.into_iter().map(|(k, _, _, v)| (k, v)).collect()
    }

    /// The values in `seen` under `name` with exactly `labels`.
    fn values<'a>(
        seen: &'a [(CompositeKey, DebugValue)],
        name: &str,
        labels: &[(&str, &str)],
    ) -> Vec<&'a DebugValue> {
        let matches = |key: &CompositeKey| {
            let key = key.key();
            let mut got: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            got.sort_unstable();
            let mut want = labels.to_vec();
            want.sort_unstable();
            key.name() == name && got == want
        };
        seen.iter()
            .filter(|(key, _)| matches(key))
            .map(|(_, value)| value)
            .collect()
    }

    fn counter(seen: &[(CompositeKey, DebugValue)], name: &str, labels: &[(&str, &str)]) -> u64 {
        match values(seen, name, labels).as_slice() {
            [DebugValue::Counter(n)] => *n,
            [] => 0,
            other => panic!("{name} {labels:?}: {other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_store_call_is_timed_by_operation_and_backend() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let outcome = execute(Scripted::default(), Duration::ZERO).await;
        assert!(matches!(outcome, Outcome::Executed(())), "{outcome:?}");
        let seen = read(&snapshotter);
        for operation in ["claim", "complete"] {
            let labels = [("operation", operation), ("backend", "scripted")];
            let found = values(&seen, STORE_DURATION, &labels);
            let [DebugValue::Histogram(durations)] = found.as_slice() else {
                panic!("{operation}: {seen:?}");
            };
            assert_eq!(durations.len(), 1, "{operation}: one call, one duration");
            assert!(
                durations[0].into_inner() < 1.0,
                "{operation}: {durations:?}"
            );
        }
        let release = [("operation", "release"), ("backend", "scripted")];
        assert!(values(&seen, STORE_DURATION, &release).is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn completion_retries_and_lost_completions_are_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        // Two blips, then the result is kept: two retries, nothing lost.
        let blips = completing_after(vec![down(), down()]);
        let outcome = execute(blips, Duration::ZERO).await;
        assert!(matches!(outcome, Outcome::Executed(())), "{outcome:?}");
        let seen = read(&snapshotter);
        let complete = [("operation", "complete")];
        let lease_lost = [("reason", "lease_lost")];
        assert_eq!(counter(&seen, COMPLETION_RETRIES, &complete), 2);
        assert_eq!(counter(&seen, COMPLETIONS_LOST, &lease_lost), 0);
        // The token refused: the result is lost, and counted as such.
        let refused = completing_after(vec![Error::LeaseLost]);
        let outcome = execute(refused, Duration::ZERO).await;
        assert!(matches!(outcome, Outcome::Lost(())), "{outcome:?}");
        let seen = read(&snapshotter);
        assert_eq!(counter(&seen, COMPLETIONS_LOST, &lease_lost), 1);
        assert_eq!(counter(&seen, COMPLETION_RETRIES, &complete), 0);
    }

    // On paused time, so that the count of renewals does not depend on how
    // busy the machine is.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn renewals_and_lost_leases_are_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let refused = [("reason", "refused")];
        // A 350 ms handler on a lease renewed every 100 ms: three renewals.
        let outcome = execute(Scripted::default(), Duration::from_millis(350)).await;
        assert!(matches!(outcome, Outcome::Executed(())), "{outcome:?}");
        let seen = read(&snapshotter);
        assert_eq!(counter(&seen, LEASE_RENEWALS, &[]), 3);
        assert_eq!(counter(&seen, LEASES_LOST, &refused), 0);
        // The first renewal is refused: the lease is lost, once.
        let refusing = extending_after(vec![Error::LeaseLost]);
        let outcome = execute(refusing, Duration::from_millis(250)).await;
        assert!(matches!(outcome, Outcome::Lost(())), "{outcome:?}");
        let seen = read(&snapshotter);
        assert_eq!(counter(&seen, LEASES_LOST, &refused), 1);
        assert_eq!(counter(&seen, LEASE_RENEWALS, &[]), 0);
    }

    #[test]
    fn the_default_backend_name_is_the_bare_type_name() {
        assert_eq!(crate::store::type_name_of::<Vec<String>>(), "Vec");
        assert_eq!(crate::store::type_name_of::<Scripted>(), "Scripted");
    }
}
