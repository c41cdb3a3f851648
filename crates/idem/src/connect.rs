//! Building a store from a [`StoreConfig`].

use std::sync::Arc;

use idem_core::{IdempotencyStore, Result};
use idem_memory::{CachedStore, MemoryStore};

use crate::{Backend, StoreConfig, backend_for_url};

/// Connects to the store a URL names, with default settings.
///
/// # Errors
/// [`idem_core::Error::Config`] for an unknown scheme or a backend whose
/// cargo feature is off (the message names it); the backend's error when it
/// cannot connect. No message contains the URL's password.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idem::Result<()> {
/// let store = idem::connect("memory://").await?;
/// # let _ = store; Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn IdempotencyStore>> {
    StoreConfig::from_url(url).connect().await
}

impl StoreConfig {
    /// Connects to the store this config names, with the memory tier in
    /// front if [`StoreConfig::tier`] is set.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem::Result<()> {
    /// let mut config = idem::StoreConfig::from_url("sqlite::memory:");
    /// config.tier = true;
    /// let store = config.connect().await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect(&self) -> Result<Arc<dyn IdempotencyStore>> {
        let backend = backend_for_url(&self.store_url)?;
        let store = connect_backend(backend, self).await?;
        tracing::debug!(?backend, tier = self.tier, "idempotency store connected");
        Ok(if self.tier {
            Arc::new(CachedStore::new(store, self.tier_config()))
        } else {
            store
        })
    }
}

async fn connect_backend(
    backend: Backend,
    config: &StoreConfig,
) -> Result<Arc<dyn IdempotencyStore>> {
    #[allow(unused_variables)] // read only by the backends compiled in
    let url = config.store_url.trim();
    match backend {
        Backend::Memory => Ok(Arc::new(MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => Ok(Arc::new(config.connect_sqlite().await?)),
        #[cfg(feature = "postgres")]
        Backend::Postgres => Ok(Arc::new(config.connect_postgres().await?)),
        #[cfg(feature = "mysql")]
        Backend::MySql => Ok(Arc::new(config.connect_mysql().await?)),
        #[cfg(feature = "redis")]
        Backend::Redis => {
            // No table: the keys are the records.
            use idem_redis::RedisConfig as C;
            let c = C::from_url(url)?;
            let c = set(c, config.max_connections, C::with_max_connections);
            let c = set(c, config.connect_timeout, C::with_connect_timeout);
            let c = set(c, config.operation_timeout, C::with_operation_timeout);
            Ok(Arc::new(idem_redis::RedisStore::connect(c).await?))
        }
        #[cfg(feature = "mssql")]
        Backend::Mssql => {
            use idem_mssql::MssqlConfig as C;
            let c = C::parse(url)?;
            let c = set(c, config.max_connections, C::with_max_connections);
            let c = set(c, config.connect_timeout, C::with_connect_timeout);
            let c = set(c, config.operation_timeout, C::with_operation_timeout);
            let c = set(c, config.table.clone(), |c, t: String| c.with_table(t));
            let c = set(c, config.migrations, C::with_migrations);
            Ok(Arc::new(idem_mssql::MssqlStore::connect(c).await?))
        }
        #[allow(unreachable_patterns)]
        other => Err(other.not_compiled_in()),
    }
}

/// `config` with `setter` applied when `value` is given, else unchanged.
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "redis",
    feature = "mssql"
))]
pub(crate) fn set<C, T>(config: C, value: Option<T>, setter: impl FnOnce(C, T) -> C) -> C {
    match value {
        Some(value) => setter(config, value),
        None => config,
    }
}
