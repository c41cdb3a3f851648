//! The SQLite store.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use idem_core::{
    Claim, Error, IdempotencyStore, LeaseToken, PurgeExpired, Result, StoreKey, async_trait,
};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row};

use super::SqliteConfig;
use super::schema::Queries;
use crate::error::{map_err, within};
use crate::purge::PurgeTask;
use crate::table::validate_table;
use crate::time::ttl_millis;

const BACKEND: &str = "sqlite";

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
pub struct SqliteStore {
    shared: Shared,
    config: Arc<SqliteConfig>,
    _purge: Option<Arc<PurgeTask>>,
}

/// What the background purge needs: the pool and the statements.
#[derive(Clone)]
struct Shared {
    pool: SqlitePool,
    q: Arc<Queries>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("config", &self.config)
            .field("connections", &self.shared.pool.size())
            .finish()
    }
}

impl SqliteStore {
    /// Opens the database and, unless turned off, creates the table and its
    /// expiry index when missing.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad table name or URL; [`Error::Unavailable`]
    /// when the file cannot be opened.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f() -> idem_core::Result<()> {
    /// use idem_sql::{SqliteConfig, SqliteStore};
    /// let store = SqliteStore::connect(SqliteConfig::file("idem.db")).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect(config: SqliteConfig) -> Result<Self> {
        validate_table(config.table())?;
        let options = config.connect_options()?;
        let settings = &config.settings;
        let pool_options = if config.is_memory() {
            // A memory database lives as long as its connection: exactly one,
            // never closed for idleness or age.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(settings.max_connections)
        }
        .acquire_timeout(settings.acquire_timeout);
        let pool = if config.is_memory() || settings.migrations {
            within(BACKEND, settings.connect_timeout, async {
                pool_options.connect_with(options).await.map_err(err)
            })
            .await?
        } else {
            pool_options.connect_lazy_with(options)
        };
        let shared = Shared {
            pool,
            q: Arc::new(Queries::new(config.table())),
        };
        if settings.migrations {
            within(BACKEND, settings.connect_timeout, shared.migrate()).await?;
        }
        let purge = PurgeTask::every(
            BACKEND,
            settings.purge_interval,
            &shared,
            |s: Shared| async move { s.purge().await },
        );
        Ok(Self {
            shared,
            config: Arc::new(config),
            _purge: purge,
        })
    }

    /// The connection pool, for your own queries or to close it.
    pub fn pool(&self) -> &SqlitePool {
        &self.shared.pool
    }

    /// The configuration this store was opened with.
    pub fn config(&self) -> &SqliteConfig {
        &self.config
    }
}

impl Shared {
    async fn migrate(&self) -> Result<()> {
        for sql in &self.q.create {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .execute(&self.pool)
                .await
                .map_err(|e| map_err(BACKEND, e))?;
        }
        Ok(())
    }

    async fn purge(&self) -> Result<u64> {
        let done = sqlx::query(AssertSqlSafe(self.q.purge.clone()))
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(BACKEND, e))?;
        Ok(done.rows_affected())
    }
}

/// This process's clock in milliseconds since the epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn err(e: sqlx::Error) -> Error {
    map_err(BACKEND, e)
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        let row = sqlx::query(AssertSqlSafe(self.shared.q.find.clone()))
            .bind(key.as_str())
            .bind(now_ms())
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(err)?;
        row.map(|r| r.try_get::<Vec<u8>, _>(0).map(Bytes::from))
            .transpose()
            .map_err(err)
    }

    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        sqlx::query(AssertSqlSafe(self.shared.q.store.clone()))
            .bind(key.as_str())
            .bind(&value[..])
            .bind(now_ms().saturating_add(ttl_millis(ttl)))
            .execute(&self.shared.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        let done = sqlx::query(AssertSqlSafe(self.shared.q.remove.clone()))
            .bind(key.as_str())
            .bind(now_ms())
            .execute(&self.shared.pool)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        let row = sqlx::query(AssertSqlSafe(self.shared.q.exists.clone()))
            .bind(key.as_str())
            .bind(now_ms())
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(err)?;
        Ok(row.is_some())
    }

    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        let token = LeaseToken::generate();
        let now = now_ms();
        let row = sqlx::query(AssertSqlSafe(self.shared.q.claim.clone()))
            .bind(key.as_str())
            .bind(&pending[..])
            .bind(&token.as_bytes()[..])
            .bind(now.saturating_add(ttl_millis(lease)))
            .bind(now)
            .fetch_one(&self.shared.pool)
            .await
            .map_err(err)?;
        let held: Option<Vec<u8>> = row.try_get(1).map_err(err)?;
        if held.as_deref() == Some(&token.as_bytes()[..]) {
            return Ok(Claim::Acquired(token));
        }
        let value: Vec<u8> = row.try_get(0).map_err(err)?;
        Ok(Claim::Existing(Bytes::from(value)))
    }

    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let now = now_ms();
        let done = sqlx::query(AssertSqlSafe(self.shared.q.complete.clone()))
            .bind(&value[..])
            .bind(now.saturating_add(ttl_millis(ttl)))
            .bind(key.as_str())
            .bind(&token.as_bytes()[..])
            .bind(now)
            .execute(&self.shared.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let done = sqlx::query(AssertSqlSafe(self.shared.q.release.clone()))
            .bind(key.as_str())
            .bind(&token.as_bytes()[..])
            .bind(now_ms())
            .execute(&self.shared.pool)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl PurgeExpired for SqliteStore {
    async fn purge_expired(&self) -> Result<u64> {
        self.shared.purge().await
    }
}
