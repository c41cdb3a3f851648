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

#[cfg(feature = "sqlite")]
impl StoreConfig {
    /// Connects to the SQLite store this config names, as its own type: for
    /// what only a SQL store has, such as its transactional mode
    /// ([`idem_sql::SqliteStore::transactional`]) or its pool. The memory
    /// tier setting does not apply.
    ///
    /// # Errors
    /// [`idem_core::Error::Config`] when the URL is not a SQLite one; the
    /// store's error when it cannot open the database.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem::Result<()> {
    /// let store = idem::StoreConfig::from_url("sqlite::memory:").connect_sqlite().await?;
    /// let engine = store.transactional();
    /// # let _ = engine; Ok(()) }
    /// ```
    pub async fn connect_sqlite(&self) -> Result<idem_sql::SqliteStore> {
        use idem_sql::SqliteConfig as C;
        let c = C::from_url(self.store_url.trim())?;
        let c = set(c, self.max_connections, C::with_max_connections);
        let c = set(c, self.connect_timeout, C::with_connect_timeout);
        let c = set(c, self.operation_timeout, C::with_operation_timeout);
        let c = set(c, self.table.clone(), |c, t: String| c.with_table(t));
        let c = set(c, self.migrations, C::with_migrations);
        idem_sql::SqliteStore::connect(c).await
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
        Backend::Postgres => {
            use idem_sql::PostgresConfig as C;
            let c = C::from_url(url)?;
            let c = set(c, config.max_connections, C::with_max_connections);
            let c = set(c, config.connect_timeout, C::with_connect_timeout);
            let c = set(c, config.operation_timeout, C::with_operation_timeout);
            let c = set(c, config.table.clone(), |c, t: String| c.with_table(t));
            let c = set(c, config.migrations, C::with_migrations);
            Ok(Arc::new(idem_sql::PostgresStore::connect(c).await?))
        }
        #[cfg(feature = "mysql")]
        Backend::MySql => {
            use idem_sql::MySqlConfig as C;
            let c = C::from_url(url)?;
            let c = set(c, config.max_connections, C::with_max_connections);
            let c = set(c, config.connect_timeout, C::with_connect_timeout);
            let c = set(c, config.operation_timeout, C::with_operation_timeout);
            let c = set(c, config.table.clone(), |c, t: String| c.with_table(t));
            let c = set(c, config.migrations, C::with_migrations);
            Ok(Arc::new(idem_sql::MySqlStore::connect(c).await?))
        }
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
fn set<C, T>(config: C, value: Option<T>, setter: impl FnOnce(C, T) -> C) -> C {
    match value {
        Some(value) => setter(config, value),
        None => config,
    }
}
