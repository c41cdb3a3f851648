//! Building a store from a [`StoreConfig`].

use std::sync::Arc;

use idem_core::{IdempotencyStore, Result};
use idem_memory::{CachedStore, MemoryStore};

use crate::{Backend, StoreConfig, backend_for_url};

/// Applies the shared settings to a backend's config: pool size, connect
/// timeout, the per-operation timeout through `$command` (the setter's name
/// differs by backend), and with `table` the table and migrations.
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "redis",
    feature = "mssql"
))]
macro_rules! settings {
    ($c:expr, $config:expr, $command:ident $(, $table:ident)?) => {{
        let mut c = $c;
        let config: &StoreConfig = $config;
        if let Some(n) = config.max_connections {
            c = c.with_max_connections(n);
        }
        if let Some(t) = config.connect_timeout {
            c = c.with_connect_timeout(t);
        }
        if let Some(t) = config.command_timeout {
            c = c.$command(t);
        }
        $(
            let _ = stringify!($table);
            if let Some(table) = &config.table {
                c = c.with_table(table.clone());
            }
            if let Some(on) = config.migrations {
                c = c.with_migrations(on);
            }
        )?
        c
    }};
}

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
        Backend::Sqlite => {
            let c = settings!(
                idem_sql::SqliteConfig::from_url(url)?,
                config,
                with_acquire_timeout,
                table
            );
            Ok(Arc::new(idem_sql::SqliteStore::connect(c).await?))
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let c = settings!(
                idem_sql::PostgresConfig::from_url(url)?,
                config,
                with_acquire_timeout,
                table
            );
            Ok(Arc::new(idem_sql::PostgresStore::connect(c).await?))
        }
        #[cfg(feature = "mysql")]
        Backend::MySql => {
            let c = settings!(
                idem_sql::MySqlConfig::from_url(url)?,
                config,
                with_acquire_timeout,
                table
            );
            Ok(Arc::new(idem_sql::MySqlStore::connect(c).await?))
        }
        #[cfg(feature = "redis")]
        Backend::Redis => {
            let c = settings!(
                idem_redis::RedisConfig::from_url(url)?,
                config,
                with_command_timeout
            );
            Ok(Arc::new(idem_redis::RedisStore::connect(c).await?))
        }
        #[cfg(feature = "mssql")]
        Backend::Mssql => {
            let c = settings!(
                idem_mssql::MssqlConfig::parse(url)?,
                config,
                with_command_timeout,
                table
            );
            Ok(Arc::new(idem_mssql::MssqlStore::connect(c).await?))
        }
        #[allow(unreachable_patterns)]
        other => Err(other.not_compiled_in()),
    }
}
