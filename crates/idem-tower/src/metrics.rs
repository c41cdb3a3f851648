//! What the layer did: counters of its own, and the same events recorded
//! through the `metrics` facade.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use idem_core::metrics::REQUESTS;
use metrics::{Key, Label, Level, Metadata};

/// Live counters of what the layer did, shared by every clone of one
/// [`IdempotencyLayer`](crate::IdempotencyLayer). Read them with
/// [`snapshot`](Self::snapshot) or the per-counter getters.
///
/// Each event counted here is also recorded, once, through the
/// [`metrics`](https://docs.rs/metrics) facade as `idem_requests_total`
/// with its `outcome` (see the README's "Metrics" table), for the exporter
/// the application installed; these counters are per layer, for tests and
/// for applications without an exporter.
///
/// # Examples
/// ```
/// # use std::sync::Arc;
/// let layer = idem_tower::IdempotencyLayer::new(Arc::new(idem_memory::MemoryStore::new()));
/// let metrics = layer.metrics();
/// assert_eq!(metrics.snapshot().executed, 0);
/// ```
#[derive(Debug, Default)]
pub struct Metrics {
    executed: AtomicU64,
    replayed: AtomicU64,
    in_flight: AtomicU64,
    mismatch: AtomicU64,
    errors: AtomicU64,
    released: AtomicU64,
    completion_lost: AtomicU64,
    rejected: AtomicU64,
    draining: AtomicU64,
    passed_through: AtomicU64,
}

/// One reading of every [`Metrics`] counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// The handler ran under a claim (whether its result was kept or released).
    pub executed: u64,
    /// A stored response (or "not retained" notice) was replayed.
    pub replayed: u64,
    /// `409`: the key was still in progress.
    pub in_flight: u64,
    /// `422`: the key was used with another request.
    pub mismatch: u64,
    /// The store failed (answered `503`/`500`, or passed through when
    /// fail-open): outcome `store_error`.
    pub errors: u64,
    /// Of `executed`, those whose claim was released (5xx, inner error, panic):
    /// a retry runs the handler again.
    pub released: u64,
    /// Of `executed`, those whose result could not be kept: the store still
    /// failed when the engine stopped retrying, or the lease ran out first.
    /// A retry may run the handler again; each is also logged with its key.
    pub completion_lost: u64,
    /// `400`/`401`/`413` before reaching the store (bad or missing key, body too large).
    pub rejected: u64,
    /// `503`: a new covered request while the layer drains (see
    /// [`Drain`](crate::Drain)); the handler did not run.
    pub draining: u64,
    /// Requests the layer did not cover (other methods, no key when optional,
    /// or fail-open after a store error).
    pub passed_through: u64,
}

/// What one request came to, for the counters and the tracing span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Executed,
    Released,
    CompletionLost,
    Replayed,
    InFlight,
    Mismatch,
    Error,
    Rejected,
    Draining,
    PassedThrough,
}

/// Each [`Event`]'s `outcome` label, in the enum's order: the one place the
/// names are written.
static OUTCOMES: [[Label; 1]; 10] = [
    [Label::from_static_parts("outcome", "executed")],
    [Label::from_static_parts("outcome", "released")],
    [Label::from_static_parts("outcome", "completion_lost")],
    [Label::from_static_parts("outcome", "replayed")],
    [Label::from_static_parts("outcome", "in_flight")],
    [Label::from_static_parts("outcome", "mismatch")],
    [Label::from_static_parts("outcome", "store_error")],
    [Label::from_static_parts("outcome", "rejected")],
    [Label::from_static_parts("outcome", "draining")],
    [Label::from_static_parts("outcome", "passed_through")],
];

/// `idem_requests_total` for each outcome, built once: `counter!` would
/// build the series' labels anew, on the heap, on every request.
static SERIES: [Key; 10] = {
    const fn series(labels: &'static [Label; 1]) -> Key {
        Key::from_static_parts(REQUESTS, labels)
    }
    [
        series(&OUTCOMES[0]),
        series(&OUTCOMES[1]),
        series(&OUTCOMES[2]),
        series(&OUTCOMES[3]),
        series(&OUTCOMES[4]),
        series(&OUTCOMES[5]),
        series(&OUTCOMES[6]),
        series(&OUTCOMES[7]),
        series(&OUTCOMES[8]),
        series(&OUTCOMES[9]),
    ]
};

/// Where the requests are counted from, for the recorder.
static COUNTED_AT: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

impl Event {
    /// The name recorded as the span's `outcome`.
    pub(crate) fn name(self) -> &'static str {
        OUTCOMES[self as usize][0].value()
    }
}

impl Metrics {
    /// Counts `event` here and, if the request was covered, in the
    /// `idem_requests_total` series of the installed recorder.
    pub(crate) fn record(&self, event: Event) {
        if event != Event::PassedThrough {
            metrics::with_recorder(|recorder| {
                recorder
                    .register_counter(&SERIES[event as usize], &COUNTED_AT)
                    .increment(1);
            });
        }
        let counter = match event {
            Event::Executed => &self.executed,
            Event::Released => {
                self.executed.fetch_add(1, Relaxed);
                &self.released
            }
            Event::CompletionLost => {
                self.executed.fetch_add(1, Relaxed);
                &self.completion_lost
            }
            Event::Replayed => &self.replayed,
            Event::InFlight => &self.in_flight,
            Event::Mismatch => &self.mismatch,
            Event::Error => &self.errors,
            Event::Rejected => &self.rejected,
            Event::Draining => &self.draining,
            Event::PassedThrough => &self.passed_through,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// Every counter at once.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            executed: self.executed(),
            replayed: self.replayed(),
            in_flight: self.in_flight(),
            mismatch: self.mismatch(),
            errors: self.errors(),
            released: self.released.load(Relaxed),
            completion_lost: self.completion_lost.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            draining: self.draining.load(Relaxed),
            passed_through: self.passed_through.load(Relaxed),
        }
    }

    /// Handler runs under a claim.
    pub fn executed(&self) -> u64 {
        self.executed.load(Relaxed)
    }

    /// Replays.
    pub fn replayed(&self) -> u64 {
        self.replayed.load(Relaxed)
    }

    /// `409` answers.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    /// `422` answers.
    pub fn mismatch(&self) -> u64 {
        self.mismatch.load(Relaxed)
    }

    /// Store failures.
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_and_lost_results_count_as_executed_too() {
        let metrics = Metrics::default();
        metrics.record(Event::Executed);
        metrics.record(Event::Released);
        metrics.record(Event::CompletionLost);
        let seen = metrics.snapshot();
        assert_eq!(seen.executed, 3);
        assert_eq!(seen.released, 1);
        assert_eq!(seen.completion_lost, 1);
        assert_eq!(Event::CompletionLost.name(), "completion_lost");
    }

    #[test]
    fn a_request_turned_away_by_a_drain_counts_apart() {
        let metrics = Metrics::default();
        metrics.record(Event::Draining);
        let seen = metrics.snapshot();
        assert_eq!((seen.draining, seen.rejected, seen.executed), (1, 0, 0));
        assert_eq!(Event::Draining.name(), "draining");
    }

    #[test]
    fn each_event_has_its_own_name_and_series() {
        let named = [
            (Event::Executed, "executed"),
            (Event::Released, "released"),
            (Event::CompletionLost, "completion_lost"),
            (Event::Replayed, "replayed"),
            (Event::InFlight, "in_flight"),
            (Event::Mismatch, "mismatch"),
            (Event::Error, "store_error"),
            (Event::Rejected, "rejected"),
            (Event::Draining, "draining"),
            (Event::PassedThrough, "passed_through"),
        ];
        for (event, name) in named {
            assert_eq!(event.name(), name);
            let series = &SERIES[event as usize];
            assert_eq!(series.name(), REQUESTS);
            let labels: Vec<_> = series.labels().map(|l| (l.key(), l.value())).collect();
            assert_eq!(labels, [("outcome", name)]);
        }
    }
}
