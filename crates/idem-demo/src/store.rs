//! Opening the idempotency store from its URL.

use std::sync::Arc;

use idem_core::{Error, IdempotencyStore};

/// Opens the idempotency store named by `url`.
///
/// This is the one place the demo chooses a backend. It builds the SQLite
/// store of `idem-sql` (`sqlite://path`, `sqlite::memory:`); other schemes
/// are refused with a configuration error.
///
/// # Errors
/// [`Error::Config`] for a URL it cannot use, or the store's error when it
/// cannot be opened.
pub async fn open_store(url: &str) -> Result<Arc<dyn IdempotencyStore>, Error> {
    let config = idem_sql::SqliteConfig::from_url(url)?;
    let store = idem_sql::SqliteStore::connect(config).await?;
    Ok(Arc::new(store))
}
