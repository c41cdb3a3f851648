#![doc = include_str!("../README.md")]

mod body;
mod config;
mod drain;
mod exchange;
mod fingerprint;
mod future;
mod key;
mod layer;
mod metrics;
mod problem;
mod request_id;
mod response;
mod service;

pub use config::{
    DEFAULT_BODY_LIMIT, DEFAULT_STORAGE_LIMIT, default_keep, default_replayed_headers,
};
pub use drain::{DEFAULT_DRAIN_RETRY_AFTER, Drain};
pub use future::ResponseFuture;
/// Handed to the inner service in the request's extensions while its key is
/// held: it tells a long handler that its lease was lost.
pub use idem_core::LeaseSignal;
pub use key::IDEMPOTENCY_KEY;
pub use layer::IdempotencyLayer;
pub use metrics::{Metrics, MetricsSnapshot};
pub use problem::{PROBLEM_BASE, ProblemKind};
pub use request_id::DEFAULT_REQUEST_ID_HEADER;
pub use response::IDEMPOTENT_REPLAYED;
pub use service::IdempotencyService;
