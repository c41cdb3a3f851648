//! The MySQL / MariaDB store, and what MySQL differs in.

use std::time::Duration;

use idem_core::{Result, StoreKey};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlQueryResult};

use super::MySqlConfig;
use super::schema::queries;
use crate::dialect::{ClaimReply, Dialect, Queries, Query};
use crate::forward::forward_to_sql_store;
use crate::settings::Settings;
use crate::store::SqlStore;
use crate::time::ttl_micros;

/// An idempotency store in a MySQL or MariaDB table.
///
/// Each write is one statement. A claim is an
/// `INSERT ... ON DUPLICATE KEY UPDATE` that takes the row over only when it
/// has expired, so InnoDB's row lock picks one winner among any number of
/// racing connections. MySQL has no `RETURNING`: a claim that meets a live
/// record reads its bytes with a second `SELECT`. Expiry is the server's
/// `UTC_TIMESTAMP(6)`, checked by every statement.
///
/// # Examples
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idem_core::Result<()> {
/// use std::time::Duration;
/// use idem_core::{IdempotencyStore, StoreKey};
/// use idem_sql::{MySqlConfig, MySqlStore};
///
/// let store = MySqlStore::connect(MySqlConfig::from_url("mysql://root@127.0.0.1/test")?).await?;
/// let key = StoreKey::parse("order:42")?;
/// store.store(&key, "done".into(), Duration::from_secs(60)).await?;
/// assert_eq!(store.find(&key).await?.as_deref(), Some(&b"done"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MySqlStore(SqlStore<MySql>);

forward_to_sql_store!(MySqlStore, sqlx::MySql);

impl MySqlStore {
    /// Connects and, unless turned off, creates the table and its expiry
    /// index when missing, within the connect timeout.
    ///
    /// # Errors
    /// [`Error::Config`](idem_core::Error::Config) for a bad table name or
    /// URL; [`Error::Unavailable`](idem_core::Error::Unavailable) when the
    /// server cannot be reached within the connect timeout.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f() -> idem_core::Result<()> {
    /// use idem_sql::{MySqlConfig, MySqlStore};
    /// let config = MySqlConfig::from_url("mysql://root@127.0.0.1/test")?.with_max_connections(32);
    /// let store = MySqlStore::connect(config).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect(config: MySqlConfig) -> Result<Self> {
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
    /// use idem_sql::{MySqlConfig, MySqlStore};
    /// let store = MySqlStore::connect_lazy(MySqlConfig::from_url("mysql://root@127.0.0.1/test")?)?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn connect_lazy(config: MySqlConfig) -> Result<Self> {
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
    /// # async fn f(pool: sqlx::MySqlPool) -> idem_core::Result<()> {
    /// use idem_sql::{MySqlConfig, MySqlStore};
    /// let config = MySqlConfig::from_url("mysql://app@127.0.0.1/app")?;
    /// let store = MySqlStore::from_pool(pool, config).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn from_pool(pool: MySqlPool, config: MySqlConfig) -> Result<Self> {
        SqlStore::with_pool(pool, config)?.prepare().await.map(Self)
    }

    /// The connection pool, for your own queries or to close it.
    pub fn pool(&self) -> &MySqlPool {
        self.0.pool()
    }

    /// The configuration this store was built with.
    pub fn config(&self) -> &MySqlConfig {
        self.0.config()
    }
}

/// MySQL and MariaDB: keys as `VARBINARY`, expiry by the server's
/// `UTC_TIMESTAMP(6)`, TTLs bound as microseconds, deadlock victims run
/// again, and a claim that met a live record reads it afterwards.
#[derive(Debug)]
pub(crate) struct MySql;

impl Dialect for MySql {
    type Db = sqlx::MySql;
    type Config = MySqlConfig;
    type Now = ();

    const BACKEND: &'static str = "mysql";
    const CLOCK: &'static str = "UTC_TIMESTAMP(6)";
    // LAST_INSERT_ID(1) ran only on the branch that left a live row alone; an
    // insert (1 row) or a takeover (2 rows) reports 0.
    const CLAIM: ClaimReply<sqlx::MySql> =
        ClaimReply::ReadAfter(|done: &MySqlQueryResult| done.last_insert_id() == 1);
    const DEADLOCK_RETRIES: u32 = 5;

    /// ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK (by number: their SQLSTATEs
    /// are HY000 and 40001).
    fn lock_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
        crate::error::is_busy_mysql(error)
    }

    /// `innodb_lock_wait_timeout`, in whole seconds (at least one), for the
    /// session: the connection keeps it until the next transactional run
    /// sets it again (the store's own statements are bounded by the
    /// operation timeout anyway).
    fn lock_wait(wait: Duration) -> String {
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        format!("SET SESSION innodb_lock_wait_timeout = {seconds}")
    }

    fn settings(config: &MySqlConfig) -> &Settings {
        &config.settings
    }

    fn connect_options(config: &MySqlConfig) -> Result<MySqlConnectOptions> {
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
        query.bind(ttl_micros(ttl))
    }

    fn rows_affected(done: &MySqlQueryResult) -> u64 {
        done.rows_affected()
    }
}
