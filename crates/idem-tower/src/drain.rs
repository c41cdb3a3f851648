//! [`Drain`]: stopping the layer without losing a request it has begun.

use std::future::Future;
use std::time::Duration;

use idem_core::metrics::REQUESTS_IN_FLIGHT;

use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// The `Retry-After` of a `503` answered while draining, unless
/// [`with_drain_retry_after`](crate::IdempotencyLayer::with_drain_retry_after)
/// says otherwise: 1 s.
pub const DEFAULT_DRAIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The shutdown handle of an [`IdempotencyLayer`](crate::IdempotencyLayer),
/// from [`IdempotencyLayer::drain`](crate::IdempotencyLayer::drain).
///
/// One drain is shared by the layer, its clones and every service they
/// build; clones of the handle are the same drain.
///
/// - Before [`start`](Self::start), nothing changes.
/// - From `start` on, every new request the layer covers (a covered method
///   with an `Idempotency-Key`, or any covered method when the key is
///   required) is answered `503` `application/problem+json`
///   ([`ProblemKind::Draining`](crate::ProblemKind::Draining)) with
///   `Retry-After`, and the handler does not run. Requests the layer does not
///   cover (other methods, no key when it is optional) still pass through.
/// - A covered request that began before `start` runs to the end: its
///   handler finishes and its result is stored, so a retry replays it. It
///   counts in [`in_flight`](Self::in_flight) until its result is stored or
///   released, including when its client went away and it finishes on a task
///   of its own.
///
/// [`finished`](Self::finished) waits for those requests, within a bound.
/// Writing their answers to the clients is the server's part (for hyper,
/// a graceful shutdown of each connection after `finished`).
///
/// # Examples
/// ```
/// use std::{sync::Arc, time::Duration};
/// use axum::{Router, routing::post};
/// use idem_tower::IdempotencyLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = IdempotencyLayer::new(Arc::new(idem_memory::MemoryStore::new()));
/// let drain = layer.drain();
/// let app: Router = Router::new()
///     .route("/payments", post(|| async { "paid" }))
///     .layer(layer);
///
/// // On SIGTERM: refuse new covered requests, let the running ones finish.
/// drain.start();
/// assert!(drain.is_draining());
/// assert_eq!(drain.in_flight(), 0);
/// assert!(drain.finished(Duration::from_secs(10)).await);
/// # let _ = app;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Drain {
    /// Counts covered requests; closed when the drain starts.
    tracker: TaskTracker,
}

impl Drain {
    /// A drain not started, with no request in flight (one per layer).
    pub(crate) fn new() -> Self {
        Self {
            tracker: TaskTracker::new(),
        }
    }

    /// Starts the drain: from now on, new covered requests get `503`.
    /// Calling it again does nothing.
    pub fn start(&self) {
        if self.tracker.close() {
            tracing::info!(
                in_flight = self.in_flight(),
                "idempotency: draining; new covered requests get 503"
            );
        }
    }

    /// Whether [`start`](Self::start) was called.
    pub fn is_draining(&self) -> bool {
        self.tracker.is_closed()
    }

    /// How many covered requests are running now: from the moment the layer
    /// takes one on to the moment its result is stored (or released).
    pub fn in_flight(&self) -> usize {
        self.tracker.len()
    }

    /// Waits until the drain has started and no covered request runs
    /// (`true`), or until `bound` has passed (`false`). Called before
    /// [`start`](Self::start), it waits for the start too.
    pub async fn finished(&self, bound: Duration) -> bool {
        tokio::time::timeout(bound, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Takes a covered request on: `None` while draining (answer `503`). The
    /// request counts in [`in_flight`](Self::in_flight) until the returned
    /// entry is dropped.
    pub(crate) fn enter(&self) -> Option<Entry> {
        // Counted first, then checked: either `start` sees this request in
        // `in_flight`, or this request sees the drain (both act on one atomic).
        let token = self.tracker.token();
        if self.tracker.is_closed() {
            return None;
        }
        metrics::gauge!(REQUESTS_IN_FLIGHT).increment(1.0);
        Some(Entry { _token: token })
    }
}

/// One covered request taken on by a [`Drain`]; it counts until dropped,
/// here and in the `idem_requests_in_flight` gauge.
#[derive(Debug)]
pub(crate) struct Entry {
    _token: TaskTrackerToken,
}

impl Drop for Entry {
    fn drop(&mut self) {
        metrics::gauge!(REQUESTS_IN_FLIGHT).decrement(1.0);
    }
}

impl Entry {
    /// `future`, holding this entry until it finishes or is dropped.
    pub(crate) async fn hold<F: Future>(self, future: F) -> F::Output {
        let _entry = self;
        future.await
    }
}
