//! The PostgreSQL store, and what PostgreSQL differs in.

use std::time::Duration;

use idem_core::{Result, StoreKey};
use sqlx::postgres::{PgConnectOptions, PgPool, PgQueryResult};

use super::PostgresConfig;
use super::schema::queries;
use crate::dialect::{ClaimReply, Dialect, Queries, Query};
use crate::forward::forward_to_sql_store;
use crate::settings::Settings;
use crate::store::SqlStore;
use crate::time::ttl_micros;

/// An idempotency store in a PostgreSQL table.
///
/// Each primitive is one statement. A claim inserts, or takes a row over
/// only when it has expired, in an `INSERT ... ON CONFLICT DO UPDATE`, so
/// however many app servers and connections race on one key, PostgreSQL's
/// row lock picks one winner; when the key holds a live record, the same
/// statement only reads it, so a replay writes nothing. Expiry is the
/// server's `now()`, checked by every statement.
///
/// # Examples
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idem_core::Result<()> {
/// use std::time::Duration;
/// use idem_core::{IdempotencyStore, StoreKey};
/// use idem_sql::{PostgresConfig, PostgresStore};
///
/// let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1/test")?;
/// let store = PostgresStore::connect(config).await?;
/// let key = StoreKey::parse("order:42")?;
/// store.store(&key, "done".into(), Duration::from_secs(60)).await?;
/// assert_eq!(store.find(&key).await?.as_deref(), Some(&b"done"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore(SqlStore<Postgres>);

forward_to_sql_store!(PostgresStore, sqlx::Postgres);

impl PostgresStore {
    /// Connects and, unless turned off, creates the table and its expiry
    /// index when missing (in a transaction, under an advisory lock named
    /// after the table), within the connect timeout.
    ///
    /// # Errors
    /// [`Error::Config`](idem_core::Error::Config) for a bad table name or
    /// URL; [`Error::Unavailable`](idem_core::Error::Unavailable) when the
    /// server cannot be reached within the connect timeout.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f() -> idem_core::Result<()> {
    /// use idem_sql::{PostgresConfig, PostgresStore};
    /// let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1/test")?
    ///     .with_max_connections(32);
    /// let store = PostgresStore::connect(config).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect(config: PostgresConfig) -> Result<Self> {
        SqlStore::connect(config).await.map(Self)
    }

    /// Builds the store without connecting: the pool connects, and the table
    /// is created unless turned off, when the first operation needs it. Must
    /// be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Config`](idem_core::Error::Config) for a bad table name or
    /// URL.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem_core::Result<()> {
    /// use idem_sql::{PostgresConfig, PostgresStore};
    /// let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1/test")?;
    /// let store = PostgresStore::connect_lazy(config)?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn connect_lazy(config: PostgresConfig) -> Result<Self> {
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
    /// ```no_run
    /// # async fn f(pool: sqlx::PgPool) -> idem_core::Result<()> {
    /// use idem_sql::{PostgresConfig, PostgresStore};
    /// let config = PostgresConfig::from_url("postgres://app@127.0.0.1/app")?;
    /// let store = PostgresStore::from_pool(pool, config).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn from_pool(pool: PgPool, config: PostgresConfig) -> Result<Self> {
        SqlStore::with_pool(pool, config)?.prepare().await.map(Self)
    }

    /// The connection pool, for your own queries or to close it.
    pub fn pool(&self) -> &PgPool {
        self.0.pool()
    }

    /// The configuration this store was built with.
    pub fn config(&self) -> &PostgresConfig {
        self.0.config()
    }
}

/// PostgreSQL: keys as `BYTEA`, expiry by the server's `now()`, TTLs bound
/// as microseconds.
#[derive(Debug)]
pub(crate) struct Postgres;

impl Dialect for Postgres {
    type Db = sqlx::Postgres;
    type Config = PostgresConfig;
    type Now = ();

    const BACKEND: &'static str = "postgres";
    const CLOCK: &'static str = "now()";
    const CLAIM: ClaimReply<sqlx::Postgres> = ClaimReply::Returning;
    const MIGRATION_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(hashtext($1))");

    /// lock_not_available (lock_timeout), deadlock_detected.
    fn lock_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
        matches!(error.code().as_deref(), Some("55P03" | "40P01"))
    }

    /// `lock_timeout`, for this transaction only.
    fn lock_wait(wait: Duration) -> String {
        format!("SET LOCAL lock_timeout = '{}ms'", wait.as_millis().max(1))
    }

    fn settings(config: &PostgresConfig) -> &Settings {
        &config.settings
    }

    fn connect_options(config: &PostgresConfig) -> Result<PgConnectOptions> {
        config.connect_options()
    }

    fn queries(t: &str) -> Queries {
        queries(t)
    }

    fn now() {}

    fn bind_key<'q>(query: Query<'q, Self>, key: &StoreKey) -> Query<'q, Self> {
        query.bind(key.as_str().as_bytes())
    }

    fn bind_now<'q>(query: Query<'q, Self>, (): ()) -> Query<'q, Self> {
        query
    }

    fn bind_expiry<'q>(query: Query<'q, Self>, (): (), ttl: Duration) -> Query<'q, Self> {
        query.bind(ttl_micros(ttl) as f64)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}
