//! The SQLite store, and what SQLite differs in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use idem_core::{Result, StoreKey};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteQueryResult};

use super::SqliteConfig;
use super::schema::queries;
use crate::dialect::{ClaimReply, Dialect, Queries, Query};
use crate::forward::forward_to_sql_store;
use crate::settings::Settings;
use crate::store::SqlStore;
use crate::time::ttl_millis;

/// An idempotency store in a SQLite database.
///
/// Each primitive is one statement; a claim is an upsert that takes the row
/// over only when it has expired and returns what is there, so racing
/// claims have one winner (SQLite runs one writer at a time). Expiry is
/// compared against this process's clock, in milliseconds, and checked by
/// every statement, so expired rows are invisible before they are purged.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idem_core::Result<()> {
/// use std::time::Duration;
/// use idem_core::{IdempotencyStore, StoreKey};
/// use idem_sql::{SqliteConfig, SqliteStore};
///
/// let store = SqliteStore::connect(SqliteConfig::memory()).await?;
/// let key = StoreKey::parse("order:42")?;
/// store.store(&key, "done".into(), Duration::from_secs(60)).await?;
/// assert_eq!(store.find(&key).await?.as_deref(), Some(&b"done"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore(SqlStore<Sqlite>);

forward_to_sql_store!(SqliteStore, sqlx::Sqlite);

impl SqliteStore {
    /// Opens the database and, unless turned off, creates the table and its
    /// expiry index when missing, within the connect timeout.
    ///
    /// # Errors
    /// [`Error::Config`](idem_core::Error::Config) for a bad table name or
    /// URL; [`Error::Unavailable`](idem_core::Error::Unavailable) when the
    /// file cannot be opened.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f() -> idem_core::Result<()> {
    /// use idem_sql::{SqliteConfig, SqliteStore};
    /// let store = SqliteStore::connect(SqliteConfig::file("idem.db")).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect(config: SqliteConfig) -> Result<Self> {
        SqlStore::connect(config).await.map(Self)
    }

    /// Builds the store without opening the database: that, and creating the
    /// table unless turned off, happens when the first operation needs it.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Config`](idem_core::Error::Config) for a bad table name or
    /// URL.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem_core::Result<()> {
    /// use idem_sql::{SqliteConfig, SqliteStore};
    /// let store = SqliteStore::connect_lazy(SqliteConfig::file("idem.db"))?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn connect_lazy(config: SqliteConfig) -> Result<Self> {
        SqlStore::connect_lazy(config).map(Self)
    }

    /// The store on an application's own connection pool, so that the
    /// application does not open a second pool to its database: the
    /// idempotency records (and, in the transactional mode, each request's
    /// writes with its record) share the application's connections. From
    /// `config`, the table, migrations, operation timeout, connect timeout
    /// (for this first check) and purge interval apply; its URL and pool size
    /// do not: the pool is used as it is. Like [`connect`](Self::connect),
    /// it takes a connection and, unless turned off, creates the table.
    ///
    /// # Errors
    /// [`Error::Config`](idem_core::Error::Config) for a bad table name;
    /// [`Error::Unavailable`](idem_core::Error::Unavailable) when no
    /// connection is had within the connect timeout.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem_core::Result<()> {
    /// use idem_sql::{SqliteConfig, SqliteStore};
    /// use sqlx::sqlite::SqlitePoolOptions;
    ///
    /// // The application's own pool, for its own tables too.
    /// let pool = SqlitePoolOptions::new()
    ///     .max_connections(1)
    ///     .connect("sqlite::memory:")
    ///     .await
    ///     .expect("an in-memory database");
    /// let store = SqliteStore::from_pool(pool.clone(), SqliteConfig::memory()).await?;
    /// assert!(store.pool().size() <= 1);
    /// # Ok(()) }
    /// ```
    pub async fn from_pool(pool: SqlitePool, config: SqliteConfig) -> Result<Self> {
        SqlStore::with_pool(pool, config)?.prepare().await.map(Self)
    }

    /// The connection pool, for your own queries or to close it.
    pub fn pool(&self) -> &SqlitePool {
        self.0.pool()
    }

    /// The configuration this store was opened with.
    pub fn config(&self) -> &SqliteConfig {
        self.0.config()
    }
}

/// SQLite: keys as `TEXT`, expiry in milliseconds by this process's clock.
#[derive(Debug)]
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    type Db = sqlx::Sqlite;
    type Config = SqliteConfig;
    /// Milliseconds since the epoch.
    type Now = i64;

    const BACKEND: &'static str = "sqlite";
    const CLOCK: &'static str = "?1";
    const CLAIM: ClaimReply<sqlx::Sqlite> = ClaimReply::Returning;
    // One writer at a time, and a memory database is one connection:
    // nothing to reserve.
    const RESERVED_CONNECTIONS: u32 = 0;

    /// SQLITE_BUSY, SQLITE_LOCKED.
    fn lock_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
        matches!(error.code().as_deref(), Some("5" | "6"))
    }

    /// The connection's busy timeout: SQLite locks the whole database.
    fn lock_wait(wait: Duration) -> String {
        format!("PRAGMA busy_timeout = {}", wait.as_millis().max(1))
    }

    fn settings(config: &SqliteConfig) -> &Settings {
        &config.settings
    }

    fn connect_options(config: &SqliteConfig) -> Result<SqliteConnectOptions> {
        config.connect_options()
    }

    fn pool_options(config: &SqliteConfig) -> SqlitePoolOptions {
        if config.is_memory() {
            // A memory database lives as long as its connection: exactly one,
            // never closed for idleness or age.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(config.settings.max_connections)
        }
    }

    fn queries(t: &str) -> Queries {
        queries(t)
    }

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn bind_key<'q>(query: Query<'q, Self>, key: &StoreKey) -> Query<'q, Self> {
        query.bind(key.as_str())
    }

    fn bind_now<'q>(query: Query<'q, Self>, now: i64) -> Query<'q, Self> {
        query.bind(now)
    }

    fn bind_expiry<'q>(query: Query<'q, Self>, now: i64, ttl: Duration) -> Query<'q, Self> {
        query.bind(now.saturating_add(ttl_millis(ttl)))
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}
