#![doc = include_str!("../README.md")]

mod body;
mod config;
mod exchange;
mod fingerprint;
mod future;
mod key;
mod layer;
mod metrics;
mod problem;
mod response;
mod service;

pub use config::{
    DEFAULT_BODY_LIMIT, DEFAULT_STORAGE_LIMIT, default_keep, default_replayed_headers,
};
pub use future::ResponseFuture;
pub use key::IDEMPOTENCY_KEY;
pub use layer::IdempotencyLayer;
pub use metrics::{Metrics, MetricsSnapshot};
pub use problem::{PROBLEM_BASE, ProblemKind};
pub use response::IDEMPOTENT_REPLAYED;
pub use service::IdempotencyService;
