//! The PostgreSQL store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use idem_core::{
    Claim, Error, IdempotencyStore, LeaseToken, PurgeExpired, Result, StoreKey, async_trait,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row};

use super::PostgresConfig;
use super::schema::Queries;
use crate::error::{map_err, within};
use crate::purge::PurgeTask;
use crate::table::validate_table;
use crate::time::ttl_micros;

const BACKEND: &str = "postgres";

/// An idempotency store in a PostgreSQL table.
///
/// Each primitive is one statement. A claim is an
/// `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` that takes the row over
/// only when it has expired, so however many app servers and connections
/// race on one key, PostgreSQL's row lock picks one winner. Expiry is the
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
pub struct PostgresStore {
    shared: Shared,
    config: Arc<PostgresConfig>,
    _purge: Option<Arc<PurgeTask>>,
}

#[derive(Clone)]
struct Shared {
    pool: PgPool,
    q: Arc<Queries>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("config", &self.config)
            .field("connections", &self.shared.pool.size())
            .finish()
    }
}

impl PostgresStore {
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
    /// use idem_sql::{PostgresConfig, PostgresStore};
    /// let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1/test")?
    ///     .with_max_connections(32);
    /// let store = PostgresStore::connect(config).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect(config: PostgresConfig) -> Result<Self> {
        validate_table(config.table())?;
        let options = config.connect_options()?;
        let settings = &config.settings;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
        let shared = Shared {
            pool,
            q: Arc::new(Queries::new(config.table())),
        };
        if settings.migrations {
            within(
                BACKEND,
                settings.connect_timeout,
                shared.migrate(config.table()),
            )
            .await?;
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
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// The configuration this store was built with.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }
}

impl Shared {
    /// Creates the table and index in one transaction, under an advisory
    /// lock named after the table, so app servers starting together do not
    /// trip over each other's `CREATE TABLE IF NOT EXISTS`.
    async fn migrate(&self, table: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("idem-sql:{table}"))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        for sql in &self.q.create {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
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

fn micros(ttl: Duration) -> f64 {
    ttl_micros(ttl) as f64
}

#[async_trait]
impl IdempotencyStore for PostgresStore {
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
        sqlx::query(AssertSqlSafe(self.shared.q.store.clone()))
            .bind(key.as_str().as_bytes())
            .bind(&value[..])
            .bind(micros(ttl))
            .execute(&self.shared.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        let done = sqlx::query(AssertSqlSafe(self.shared.q.remove.clone()))
            .bind(key.as_str().as_bytes())
            .execute(&self.shared.pool)
            .await
            .map_err(err)?;
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
        let token = LeaseToken::generate();
        let row = sqlx::query(AssertSqlSafe(self.shared.q.claim.clone()))
            .bind(key.as_str().as_bytes())
            .bind(&pending[..])
            .bind(&token.as_bytes()[..])
            .bind(micros(lease))
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
        let done = sqlx::query(AssertSqlSafe(self.shared.q.complete.clone()))
            .bind(&value[..])
            .bind(micros(ttl))
            .bind(key.as_str().as_bytes())
            .bind(&token.as_bytes()[..])
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
            .bind(key.as_str().as_bytes())
            .bind(&token.as_bytes()[..])
            .execute(&self.shared.pool)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl PurgeExpired for PostgresStore {
    async fn purge_expired(&self) -> Result<u64> {
        self.shared.purge().await
    }
}
