//! Opening the idempotency store from its URL.

use std::sync::Arc;

use idem::{Error, IdempotencyStore, StoreConfig};

/// The store's settings: `url`, plus the `IDEM_*` environment variables the
/// `idem` crate reads (lease, retention, timeouts, memory tier, ...).
///
/// # Errors
/// [`Error::Config`] when an `IDEM_*` variable has a wrong value.
pub fn store_config(url: &str) -> Result<StoreConfig, Error> {
    let mut config = StoreConfig::load(None)?;
    config.store_url = url.to_owned();
    Ok(config)
}

/// Opens the idempotency store `config` names, through `idem`'s URL
/// dispatch: `sqlite://path` always; `redis://`, `postgres://`, `mysql://`,
/// `mssql://` when the demo is built with that feature.
///
/// # Errors
/// [`Error::Config`] for an unknown scheme or one whose feature is off (the
/// message names the feature), or the store's error when it cannot connect.
pub async fn open_store(config: &StoreConfig) -> Result<Arc<dyn IdempotencyStore>, Error> {
    config.connect().await
}
