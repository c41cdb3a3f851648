#![doc = include_str!("../README.md")]

mod call;
mod engine;
mod error;
mod fingerprint;
mod key;
mod lease;
pub mod metrics;
mod protocol;
mod record;
#[cfg(test)]
mod scripted;
mod secret;
mod settle;
mod stats;
mod store;
mod traced;

pub use call::{
    Call, CallError, CallExt, Called, ERROR_CONTENT_TYPE, ErrorPolicy, KeepErrors, KeepErrorsIf,
    ReleaseErrors, VALUE_CONTENT_TYPE,
};
pub use engine::Engine;
pub use error::{BoxError, Error, Result};
pub use fingerprint::{Fingerprint, FingerprintBuilder};
pub use key::{
    DEFAULT_PREFIX, IdempotencyKey, KeyError, KeySpace, MAX_KEY_LEN, MAX_PREFIX_LEN, MAX_SCOPE_LEN,
    MAX_STORE_KEY_LEN, Scope, StoreKey,
};
pub use lease::LeaseSignal;
pub use protocol::{
    Completion, DEFAULT_COMPLETION_BOUND, DEFAULT_LEASE, DEFAULT_RETENTION, DEFAULT_RETRY_HINT,
    Idempotency, Outcome,
};
pub use record::{Record, RecordState, StoredResponse};
pub use secret::redact_url;
pub use stats::StoreStats;
pub use store::{Claim, IdempotencyStore, LeaseToken, PurgeExpired};
pub use traced::Traced;

// Backends implement the trait with `#[idem_core::async_trait]`, so they need
// not depend on async-trait themselves.
#[doc(hidden)]
pub use async_trait::async_trait;
