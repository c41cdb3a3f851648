//! The MySQL / MariaDB store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use idem_core::{
    Claim, Error, IdempotencyStore, LeaseToken, PurgeExpired, Result, StoreKey, async_trait,
};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlQueryResult};
use sqlx::{AssertSqlSafe, Row};

use super::MySqlConfig;
use super::schema::Queries;
use crate::error::{is_retryable_conflict, map_err, within};
use crate::purge::PurgeTask;
use crate::table::validate_table;
use crate::time::ttl_micros;

const BACKEND: &str = "mysql";

/// How often a statement that InnoDB chose as a deadlock victim is retried.
const DEADLOCK_RETRIES: u32 = 5;

/// How often a claim is retried when the live record it met vanished before
/// it could be read (released, removed or expired in between).
const VANISHED_RETRIES: u32 = 5;

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
pub struct MySqlStore {
    shared: Shared,
    config: Arc<MySqlConfig>,
    _purge: Option<Arc<PurgeTask>>,
}

#[derive(Clone)]
struct Shared {
    pool: MySqlPool,
    q: Arc<Queries>,
}

impl fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStore")
            .field("config", &self.config)
            .field("connections", &self.shared.pool.size())
            .finish()
    }
}

impl MySqlStore {
    /// Builds the pool and, unless turned off, creates the table and its
    /// expiry index when missing (which connects). With migrations off no
    /// connection is opened until the first operation.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad table name or URL; [`Error::Unavailable`]
    /// when the server cannot be reached within the connect timeout.
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
        validate_table(config.table())?;
        let options = config.connect_options()?;
        let settings = &config.settings;
        let pool = MySqlPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
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
    pub fn pool(&self) -> &MySqlPool {
        &self.shared.pool
    }

    /// The configuration this store was built with.
    pub fn config(&self) -> &MySqlConfig {
        &self.config
    }

    /// Runs a write, retrying when InnoDB picked it as a deadlock victim
    /// (concurrent upserts on one key can deadlock on its gap locks).
    async fn write<F, Fut>(&self, run: F) -> Result<MySqlQueryResult>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<MySqlQueryResult, sqlx::Error>>,
    {
        let mut attempt = 0;
        loop {
            match run().await {
                Err(e) if is_retryable_conflict(&e) && attempt < DEADLOCK_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(2 << attempt)).await;
                }
                other => return other.map_err(err),
            }
        }
    }
}

impl Shared {
    async fn migrate(&self) -> Result<()> {
        sqlx::query(AssertSqlSafe(self.q.create.clone()))
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn purge(&self) -> Result<u64> {
        let done = sqlx::query(AssertSqlSafe(self.q.purge.clone()))
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(done.rows_affected())
    }
}

fn err(e: sqlx::Error) -> Error {
    map_err(BACKEND, e)
}

#[async_trait]
impl IdempotencyStore for MySqlStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        let row = sqlx::query(AssertSqlSafe(self.shared.q.find.clone()))
            .bind(key.as_str().as_bytes())
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(err)?;
        row.map(|r| r.try_get::<Vec<u8>, _>(0).map(Bytes::from))
            .transpose()
            .map_err(err)
    }

    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.write(|| {
            sqlx::query(AssertSqlSafe(self.shared.q.store.clone()))
                .bind(key.as_str().as_bytes())
                .bind(&value[..])
                .bind(ttl_micros(ttl))
                .execute(&self.shared.pool)
        })
        .await?;
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        let done = self
            .write(|| {
                sqlx::query(AssertSqlSafe(self.shared.q.remove.clone()))
                    .bind(key.as_str().as_bytes())
                    .execute(&self.shared.pool)
            })
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        let row = sqlx::query(AssertSqlSafe(self.shared.q.exists.clone()))
            .bind(key.as_str().as_bytes())
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(err)?;
        Ok(row.is_some())
    }

    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        for _ in 0..=VANISHED_RETRIES {
            let token = LeaseToken::generate();
            let done = self
                .write(|| {
                    sqlx::query(AssertSqlSafe(self.shared.q.claim.clone()))
                        .bind(key.as_str().as_bytes())
                        .bind(&pending[..])
                        .bind(&token.as_bytes()[..])
                        .bind(ttl_micros(lease))
                        .execute(&self.shared.pool)
                })
                .await?;
            // LAST_INSERT_ID(1) ran only on the branch that left a live row
            // alone; an insert (1 row) or a takeover (2 rows) reports 0.
            if done.last_insert_id() != 1 {
                return Ok(Claim::Acquired(token));
            }
            if let Some(value) = self.find(key).await? {
                return Ok(Claim::Existing(value));
            }
        }
        Err(Error::backend(
            BACKEND,
            "a claim kept meeting a live record that was gone when read",
        ))
    }

    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let done = self
            .write(|| {
                sqlx::query(AssertSqlSafe(self.shared.q.complete.clone()))
                    .bind(&value[..])
                    .bind(ttl_micros(ttl))
                    .bind(key.as_str().as_bytes())
                    .bind(&token.as_bytes()[..])
                    .execute(&self.shared.pool)
            })
            .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let done = self
            .write(|| {
                sqlx::query(AssertSqlSafe(self.shared.q.release.clone()))
                    .bind(key.as_str().as_bytes())
                    .bind(&token.as_bytes()[..])
                    .execute(&self.shared.pool)
            })
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl PurgeExpired for MySqlStore {
    async fn purge_expired(&self) -> Result<u64> {
        self.shared.purge().await
    }
}
