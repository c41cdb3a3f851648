//! The store the three databases share: connecting, and the primitives
//! written once over a [`Dialect`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use idem_core::{Claim, Error, LeaseToken, Result, StoreKey};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type,
};
use tokio::sync::{OnceCell, Semaphore};

use crate::dialect::{ClaimReply, Dialect, Queries, Query, QueryResult};
use crate::error::{is_retryable_conflict, map_err, within};
use crate::purge::PurgeTask;
use crate::settings::Settings;
use crate::table::validate_table;

mod stats;

/// How often a claim is retried when it met a record it could not read:
/// one that vanished before the read (released, removed or expired in
/// between; [`ClaimReply::ReadAfter`]), or, for a statement that returns
/// nothing then ([`ClaimReply::Returning`]), one another transaction wrote
/// after the statement's snapshot was taken.
const VANISHED_RETRIES: u32 = 5;

/// An idempotency store on dialect `D`: what `SqliteStore`, `PostgresStore`
/// and `MySqlStore` each wrap.
pub(crate) struct SqlStore<D: Dialect> {
    shared: Shared<D>,
    _purge: Option<Arc<PurgeTask>>,
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            _purge: self._purge.clone(),
        }
    }
}

/// What the operations and the background purge need.
struct Shared<D: Dialect> {
    pool: Pool<D::Db>,
    /// The admission of new work (claims, reads, writes that start a key's
    /// life): up to all but [`Dialect::RESERVED_CONNECTIONS`] of the pool at
    /// once, so that keeping a running claim (`extend`, `complete`,
    /// `release`) does not queue behind it. `None`: nothing reserved. The
    /// transactional mode's steps are not admitted through it: a run holds
    /// its connection from its claim to its commit, and a commit waiting for
    /// an admission that the claims after it hold would never come.
    new_work: Option<Arc<Semaphore>>,
    q: Arc<Queries>,
    config: Arc<D::Config>,
    /// Set once the schema exists, or from the start with migrations off.
    schema: Arc<OnceCell<()>>,
}

impl<D: Dialect> Clone for Shared<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            new_work: self.new_work.clone(),
            q: self.q.clone(),
            config: self.config.clone(),
            schema: self.schema.clone(),
        }
    }
}

pub(crate) fn err<D: Dialect>(e: sqlx::Error) -> Error {
    map_err(D::BACKEND, e)
}

/// One of the store's statements, as a query to bind.
pub(crate) fn statement<D: Dialect>(sql: &Arc<str>) -> Query<'static, D> {
    sqlx::query(AssertSqlSafe(sql.clone()))
}

/// What a fenced write that changed `rows` rows means: the caller's claim
/// was live (one row), or it was lost (none).
pub(crate) fn fenced(rows: u64) -> Result<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(Error::LeaseLost)
    }
}

/// When no connection is idle and the pool may grow, opens one in a
/// task of its own, bounded by the pool's acquire timeout (at least the
/// connect timeout), which puts it in the pool.
///
/// An operation that opens a connection itself abandons it, half made,
/// when the operation times out. After a stall or a restart every
/// connection is opened again at once, under load: operations queue for
/// a connection, each gets one with little of its time left, and the
/// logins (PostgreSQL's SCRAM hashing is 50 ms of CPU in a debug build)
/// never finish: nothing gets through until the load stops. A login
/// that outlives the operation that asked for it ends that.
fn open_in_background<DB: Database>(pool: &Pool<DB>) {
    if pool.is_closed()
        || pool.num_idle() > 0
        || pool.size() >= pool.options().get_max_connections()
    {
        return;
    }
    let pool = pool.clone();
    tokio::spawn(async move { drop(pool.acquire().await) });
}

impl<D: Dialect> SqlStore<D> {
    /// The connection pool.
    pub(crate) fn pool(&self) -> &Pool<D::Db> {
        &self.shared.pool
    }

    /// The configuration the store was built with.
    pub(crate) fn config(&self) -> &D::Config {
        &self.shared.config
    }

    pub(crate) fn settings(&self) -> &Settings {
        D::settings(&self.shared.config)
    }

    /// The statements, for the transactional mode.
    pub(crate) fn queries(&self) -> &Queries {
        &self.shared.q
    }
}

impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    <D::Db as Database>::Arguments: IntoArguments<D::Db>,
    for<'a> &'a [u8]: Encode<'a, D::Db> + Type<D::Db>,
    for<'a> &'a str: Encode<'a, D::Db> + Type<D::Db>,
    for<'r> Vec<u8>: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
{
    /// Builds the store without I/O: the pool connects, and with migrations
    /// on the schema is created, when the first operation needs it.
    pub(crate) fn connect_lazy(config: D::Config) -> Result<Self> {
        let settings = D::settings(&config);
        validate_table(&settings.table)?;
        // Every operation is bounded by the operation timeout itself; the
        // pool's own bound is what a connection being opened gets, and it
        // must not be shorter than the connect timeout (see
        // `Shared::open_in_background`).
        let pool = D::pool_options(&config)
            .acquire_timeout(settings.operation_timeout.max(settings.connect_timeout))
            .connect_lazy_with(D::connect_options(&config)?);
        Self::with_pool(pool, config)
    }

    /// The store on `pool`, an application's own (its size and timeouts
    /// are the application's; `config` gives the table, migrations,
    /// operation timeout and purge). No I/O.
    pub(crate) fn with_pool(pool: Pool<D::Db>, config: D::Config) -> Result<Self> {
        validate_table(&D::settings(&config).table)?;
        let settings = D::settings(&config);
        let max = pool.options().get_max_connections();
        let reserved = D::RESERVED_CONNECTIONS.min(max.saturating_sub(1));
        let new_work = (reserved > 0).then(|| Arc::new(Semaphore::new((max - reserved) as usize)));
        let schema = if settings.migrations {
            OnceCell::new()
        } else {
            OnceCell::from(())
        };
        let shared = Shared {
            pool,
            new_work,
            q: Arc::new(D::queries(&settings.table)),
            schema: Arc::new(schema),
            config: Arc::new(config),
        };
        let purge = PurgeTask::every(
            D::BACKEND,
            D::settings(&shared.config).purge_interval,
            &shared,
            |s: Shared<D>| async move { s.purge().await },
        );
        Ok(Self {
            shared,
            _purge: purge,
        })
    }

    /// [`connect_lazy`](Self::connect_lazy), then, within the connect
    /// timeout, a connection and the schema.
    pub(crate) async fn connect(config: D::Config) -> Result<Self> {
        Self::connect_lazy(config)?.prepare().await
    }

    /// Within the connect timeout, a connection and the schema.
    pub(crate) async fn prepare(self) -> Result<Self> {
        let store = self;
        let shared = &store.shared;
        within(D::BACKEND, store.settings().connect_timeout, async {
            drop(shared.pool.acquire().await.map_err(err::<D>)?);
            shared.ready().await
        })
        .await?;
        Ok(store)
    }

    /// Runs one operation of new work within the operation timeout, after
    /// making sure the schema exists and waiting for its admission
    /// ([`Shared::new_work`]).
    async fn op<T>(&self, run: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.settings().operation_timeout;
        self.op_within(limit, async {
            // The gate is never closed: a permit, held until the end.
            let _admitted = match &self.shared.new_work {
                Some(gate) => gate.acquire().await.ok(),
                None => None,
            };
            run.await
        })
        .await
    }

    /// Runs one operation that keeps a running claim within the operation
    /// timeout: on the whole pool, past the admission of new work.
    async fn keeping_op<T>(&self, run: impl Future<Output = Result<T>>) -> Result<T> {
        self.op_within(self.settings().operation_timeout, run).await
    }

    /// Runs one operation within `limit`, after making sure the schema exists.
    pub(crate) async fn op_within<T>(
        &self,
        limit: Duration,
        run: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        within(D::BACKEND, limit, async {
            self.shared.ready().await?;
            open_in_background(&self.shared.pool);
            run.await
        })
        .await
    }

    pub(crate) async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        self.op(self.shared.find(key)).await
    }

    pub(crate) async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        let s = &self.shared;
        self.op(async {
            let now = D::now();
            s.write(|| {
                let q = D::bind_key(s.query(&s.q.store), key).bind(&value[..]);
                D::bind_expiry(q, now, ttl).execute(&s.pool)
            })
            .await
            .map(drop)
        })
        .await
    }

    pub(crate) async fn remove(&self, key: &StoreKey) -> Result<bool> {
        let s = &self.shared;
        self.op(async {
            let now = D::now();
            let done = s
                .write(|| D::bind_now(D::bind_key(s.query(&s.q.remove), key), now).execute(&s.pool))
                .await?;
            Ok(D::rows_affected(&done) > 0)
        })
        .await
    }

    pub(crate) async fn exists(&self, key: &StoreKey) -> Result<bool> {
        let s = &self.shared;
        self.op(async {
            let q = D::bind_now(D::bind_key(s.query(&s.q.exists), key), D::now());
            let row = q.fetch_optional(&s.pool).await.map_err(err::<D>)?;
            Ok(row.is_some())
        })
        .await
    }

    pub(crate) async fn claim(
        &self,
        key: &StoreKey,
        pending: Bytes,
        lease: Duration,
    ) -> Result<Claim> {
        let s = &self.shared;
        self.op(async {
            match D::CLAIM {
                ClaimReply::Returning => s.claim_returning(key, &pending, lease).await,
                ClaimReply::ReadAfter(met_live) => {
                    s.claim_read_after(key, &pending, lease, met_live).await
                }
            }
        })
        .await
    }

    pub(crate) async fn extend(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        lease: Duration,
    ) -> Result<()> {
        let s = &self.shared;
        self.keeping_op(async {
            let now = D::now();
            let done = s
                .write(|| {
                    let q = D::bind_expiry(s.query(&s.q.extend), now, lease);
                    let q = D::bind_key(q, key).bind(&token.as_bytes()[..]);
                    D::bind_now(q, now).execute(&s.pool)
                })
                .await?;
            fenced(D::rows_affected(&done))
        })
        .await
    }

    pub(crate) async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let s = &self.shared;
        self.keeping_op(async {
            let now = D::now();
            let done = s
                .write(|| {
                    let q = D::bind_expiry(s.query(&s.q.complete).bind(&value[..]), now, ttl);
                    let q = D::bind_key(q, key).bind(&token.as_bytes()[..]);
                    D::bind_now(q, now).execute(&s.pool)
                })
                .await?;
            fenced(D::rows_affected(&done))
        })
        .await
    }

    pub(crate) async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let s = &self.shared;
        self.keeping_op(async {
            let now = D::now();
            let done = s
                .write(|| {
                    let q = D::bind_key(s.query(&s.q.release), key).bind(&token.as_bytes()[..]);
                    D::bind_now(q, now).execute(&s.pool)
                })
                .await?;
            Ok(D::rows_affected(&done) > 0)
        })
        .await
    }

    /// Deletes the expired records now. Bounded only by the operation timeout
    /// for getting a connection: on a large table the delete may take longer
    /// than an operation.
    pub(crate) async fn purge_expired(&self) -> Result<u64> {
        self.shared.purge().await
    }
}

impl<D: Dialect> Shared<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    <D::Db as Database>::Arguments: IntoArguments<D::Db>,
    for<'a> &'a [u8]: Encode<'a, D::Db> + Type<D::Db>,
    for<'a> &'a str: Encode<'a, D::Db> + Type<D::Db>,
    for<'r> Vec<u8>: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
{
    fn query(&self, sql: &Arc<str>) -> Query<'static, D> {
        statement::<D>(sql)
    }

    /// Creates the schema once, unless it exists or migrations are off.
    async fn ready(&self) -> Result<()> {
        self.schema
            .get_or_try_init(|| self.migrate())
            .await
            .map(drop)
    }

    async fn migrate(&self) -> Result<()> {
        let Some(lock) = D::MIGRATION_LOCK else {
            for sql in &self.q.create {
                self.query(sql)
                    .execute(&self.pool)
                    .await
                    .map_err(err::<D>)?;
            }
            return Ok(());
        };
        let name = format!("idem-sql:{}", D::settings(&self.config).table);
        let mut tx = self.pool.begin().await.map_err(err::<D>)?;
        sqlx::query(lock)
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(err::<D>)?;
        for sql in &self.q.create {
            self.query(sql).execute(&mut *tx).await.map_err(err::<D>)?;
        }
        tx.commit().await.map_err(err::<D>)
    }

    async fn purge(&self) -> Result<u64> {
        self.ready().await?;
        let limit = D::settings(&self.config).operation_timeout;
        let mut conn = within(D::BACKEND, limit, async {
            self.pool.acquire().await.map_err(err::<D>)
        })
        .await?;
        let done = D::bind_now(self.query(&self.q.purge), D::now())
            .execute(&mut *conn)
            .await
            .map_err(err::<D>)?;
        Ok(D::rows_affected(&done))
    }

    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        let q = D::bind_now(D::bind_key(self.query(&self.q.find), key), D::now());
        let row = q.fetch_optional(&self.pool).await.map_err(err::<D>)?;
        row.map(|r| r.try_get::<Vec<u8>, _>(0).map(Bytes::from))
            .transpose()
            .map_err(err::<D>)
    }

    /// Runs a write, again when the database chose it as a deadlock victim
    /// (at most [`Dialect::DEADLOCK_RETRIES`] times).
    async fn write<F, Fut>(&self, run: F) -> Result<QueryResult<D>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<QueryResult<D>, sqlx::Error>>,
    {
        let mut attempt = 0;
        loop {
            match run().await {
                Err(e) if is_retryable_conflict(&e) && attempt < D::DEADLOCK_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(2 << attempt)).await;
                }
                other => return other.map_err(err::<D>),
            }
        }
    }

    /// One statement: insert, or take an expired row over, and return the
    /// row; the caller won if the token is its own. A statement that
    /// returns no row met a record committed after its snapshot (a race
    /// with another claim) and is run again, with a new token.
    async fn claim_returning(
        &self,
        key: &StoreKey,
        pending: &[u8],
        lease: Duration,
    ) -> Result<Claim> {
        for _ in 0..=VANISHED_RETRIES {
            let token = LeaseToken::generate();
            let now = D::now();
            let q = D::bind_key(self.query(&self.q.claim), key)
                .bind(pending)
                .bind(&token.as_bytes()[..]);
            let row = D::bind_now(D::bind_expiry(q, now, lease), now)
                .fetch_optional(&self.pool)
                .await
                .map_err(err::<D>)?;
            let Some(row) = row else { continue };
            let held: Option<Vec<u8>> = row.try_get(1).map_err(err::<D>)?;
            if held.as_deref() == Some(&token.as_bytes()[..]) {
                return Ok(Claim::Acquired(token));
            }
            let value: Vec<u8> = row.try_get(0).map_err(err::<D>)?;
            return Ok(Claim::Existing(Bytes::from(value)));
        }
        Err(vanished::<D>())
    }

    /// The claim statement, then, when it met a live record, a read of it.
    async fn claim_read_after(
        &self,
        key: &StoreKey,
        pending: &[u8],
        lease: Duration,
        met_live: fn(&QueryResult<D>) -> bool,
    ) -> Result<Claim> {
        for _ in 0..=VANISHED_RETRIES {
            let token = LeaseToken::generate();
            let now = D::now();
            let done = self
                .write(|| {
                    let q = D::bind_key(self.query(&self.q.claim), key)
                        .bind(pending)
                        .bind(&token.as_bytes()[..]);
                    D::bind_now(D::bind_expiry(q, now, lease), now).execute(&self.pool)
                })
                .await?;
            if !met_live(&done) {
                return Ok(Claim::Acquired(token));
            }
            if let Some(value) = self.find(key).await? {
                return Ok(Claim::Existing(value));
            }
        }
        Err(vanished::<D>())
    }
}

/// A claim that kept meeting a record it could not read.
fn vanished<D: Dialect>() -> Error {
    Error::backend(
        D::BACKEND,
        "a claim kept meeting a live record that was gone when read",
    )
}
