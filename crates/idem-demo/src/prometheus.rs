//! `GET /metrics`: what idem records through the `metrics` facade, in the
//! Prometheus text format (metrics-exporter-prometheus).
//!
//! The recorder is process-wide (the facade has one global recorder, set
//! once): the first demo set up in a process installs it, every later one
//! (tests build many) shares it, so a scrape shows the whole process.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use idem_core::metrics::STORE_DURATION;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The buckets of the store call durations, in seconds: from a memory
/// store's tens of microseconds to a struggling server's seconds.
const STORE_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
];

/// How often histogram samples are folded into the buckets between scrapes
/// (the exporter leaves it to its user when it serves no HTTP itself).
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed on the first call.
///
/// If another recorder was installed first (by an application embedding
/// the demo), it stays, and this handle renders an empty page; the failure
/// is logged.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = match builder().install_recorder() {
            Ok(handle) => {
                idem_core::metrics::describe();
                handle
            }
            Err(error) => {
                tracing::warn!(%error, "another metrics recorder is installed; /metrics stays empty");
                builder().build_recorder().handle()
            }
        };
        let upkeep = handle.clone();
        // A thread, not a task: the handle outlives any one tokio runtime.
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP);
                    upkeep.run_upkeep();
                }
            })
            .expect("cannot start the metrics upkeep thread");
        handle
    })
}

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(STORE_DURATION.to_owned()), STORE_BUCKETS)
        .expect("the bucket list is not empty")
}

/// `GET /metrics`: every series in the Prometheus text format.
pub async fn scrape() -> impl IntoResponse {
    let handle = handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}
