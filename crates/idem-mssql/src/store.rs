//! The store: the trait's methods as SQL Server statements.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use idem_core::{
    Claim, Error, IdempotencyStore, LeaseToken, PurgeExpired, Result, StoreKey, async_trait,
};
use tiberius::{ColumnData, FromSqlOwned, Row, ToSql, Uuid};
use tokio::sync::OnceCell;

use crate::error::{BACKEND, OperationError, is_retryable, query_error, unavailable};
use crate::pool::ConnPool;
use crate::sql::{PURGE_BATCH, Statements, key_bytes, ttl_parts};
use crate::{MssqlConfig, TableName};

/// How many times a statement chosen as a deadlock victim is run again.
pub(crate) const DEADLOCK_RETRIES: u32 = 3;

/// An idempotency store in a SQL Server table, over a pool of
/// [tiberius](https://docs.rs/tiberius) connections.
///
/// Expiry uses the server's clock (`SYSUTCDATETIME()`); a claim is one
/// `MERGE ... WITH (HOLDLOCK)`, so racing app servers cannot both win; a
/// renewal, completion or release compares the lease token in the statement
/// that writes. Cloning is cheap and shares the pool.
///
/// # Examples
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idem_core::Result<()> {
/// use std::time::Duration;
/// use idem_core::{IdempotencyStore, StoreKey};
/// use idem_mssql::{MssqlConfig, MssqlStore};
///
/// let config = MssqlConfig::parse(
///     "Server=tcp:127.0.0.1,1433;Database=app;User Id=sa;Password=...;TrustServerCertificate=true",
/// )?;
/// let store = MssqlStore::connect(config).await?;
/// let key = StoreKey::parse("order:42")?;
/// store.store(&key, "done".into(), Duration::from_secs(60)).await?;
/// assert_eq!(store.find(&key).await?.as_deref(), Some(&b"done"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MssqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: ConnPool,
    statements: Statements,
    table: TableName,
    config: MssqlConfig,
    schema: OnceCell<()>,
}

impl fmt::Debug for MssqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.pool.state();
        f.debug_struct("MssqlStore")
            .field("server", &self.inner.config.to_string())
            .field("table", &self.inner.table.to_string())
            .field("connections", &state.connections)
            .field("idle", &state.idle_connections)
            .finish()
    }
}

impl MssqlStore {
    /// Connects, and creates the table if it is absent (unless
    /// [`MssqlConfig::with_migrations`] turned that off). A server that cannot
    /// be reached within the timeouts is [`Error::Unavailable`]; a bad table
    /// name is [`Error::Config`].
    ///
    /// # Examples
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem_core::Result<()> {
    /// use idem_mssql::{MssqlConfig, MssqlStore};
    /// let config = MssqlConfig::from_url("mssql://sa:pw@127.0.0.1:1433/master?trust_server_certificate=true")?
    ///     .with_table("dbo.Idempotency");
    /// let store = MssqlStore::connect(config).await?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: MssqlConfig) -> Result<Self> {
        let store = Self::connect_lazy(config)?;
        let timeout = store.inner.config.operation_timeout;
        if store.inner.config.migrations {
            with_timeout(timeout, store.ready()).await?;
        } else {
            with_timeout(timeout, async { store.inner.pool.get().await.map(drop) }).await?;
        }
        Ok(store)
    }

    /// Builds the store without connecting: the pool connects, and the table
    /// is created, on first use. Must be called inside a tokio runtime.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem_core::Result<()> {
    /// use idem_mssql::{MssqlConfig, MssqlStore};
    /// let store = MssqlStore::connect_lazy(MssqlConfig::new("127.0.0.1"))?;
    /// assert!(format!("{store:?}").contains("IdempotencyStore"));
    /// # Ok(()) }
    /// ```
    pub fn connect_lazy(config: MssqlConfig) -> Result<Self> {
        let table = TableName::parse(&config.table)?;
        if config.host.trim().is_empty() {
            return Err(Error::config("the SQL Server host is empty"));
        }
        let pool = ConnPool::new(
            config.tiberius(),
            config.max_connections,
            config.connect_timeout,
            config.operation_timeout,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                statements: Statements::new(&table),
                table,
                config,
                schema: OnceCell::new(),
            }),
        })
    }

    /// The table this store uses.
    pub fn table(&self) -> &TableName {
        &self.inner.table
    }

    pub(crate) fn pool(&self) -> &ConnPool {
        &self.inner.pool
    }

    pub(crate) fn statements(&self) -> &Statements {
        &self.inner.statements
    }

    pub(crate) fn operation_timeout(&self) -> Duration {
        self.inner.config.operation_timeout
    }

    /// Creates the table once, if migrations are on.
    pub(crate) async fn ready(&self) -> Result<()> {
        if !self.inner.config.migrations {
            return Ok(());
        }
        self.inner
            .schema
            .get_or_try_init(|| async {
                let quoted = self.inner.table.quoted();
                match self
                    .send(&self.inner.statements.create, &[&quoted], Reply::Count)
                    .await
                {
                    Ok(_) => Ok(()),
                    // Another process created it between the check and the CREATE.
                    Err(e) if matches!(server_code(&e), Some(2714 | 1913)) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await
            .map(|_| ())
    }

    /// Runs a statement that changes rows; returns how many it changed.
    async fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<u64> {
        match self.run(sql, params, Reply::Count).await? {
            Answer::Count(n) => Ok(n),
            Answer::Rows(_) => Err(reply_error("rows where a count was expected")),
        }
    }

    /// Runs a statement that returns rows; returns every result set's rows.
    async fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Row>> {
        match self.run(sql, params, Reply::Rows).await? {
            Answer::Rows(rows) => Ok(rows),
            Answer::Count(_) => Err(reply_error("a count where rows were expected")),
        }
    }

    /// Ensures the table, then sends the statement, all within the operation
    /// timeout.
    async fn run(&self, sql: &str, params: &[&dyn ToSql], reply: Reply) -> Result<Answer> {
        with_timeout(self.inner.config.operation_timeout, async {
            self.ready().await?;
            self.send(sql, params, reply).await
        })
        .await
    }

    /// Sends one statement on a pooled connection, again when the server
    /// chose it as a deadlock victim.
    async fn send(&self, sql: &str, params: &[&dyn ToSql], reply: Reply) -> Result<Answer> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.inner.pool.get().await?;
            conn.busy = true;
            let answer = match reply {
                Reply::Count => conn
                    .client
                    .execute(sql, params)
                    .await
                    .map(|r| Answer::Count(r.total())),
                Reply::Rows => match conn.client.query(sql, params).await {
                    Ok(stream) => stream
                        .into_results()
                        .await
                        .map(|sets| Answer::Rows(sets.into_iter().flatten().collect())),
                    Err(e) => Err(e),
                },
            };
            match answer {
                Ok(answer) => {
                    conn.busy = false;
                    return Ok(answer);
                }
                Err(e) => {
                    // The server answered with an error and the reply was read
                    // to its end: the connection is fine. Anything else (I/O,
                    // protocol) leaves it busy, so the pool drops it.
                    if matches!(e, tiberius::error::Error::Server(_)) {
                        conn.busy = false;
                    }
                    if is_retryable(&e) && attempt <= DEADLOCK_RETRIES {
                        tracing::debug!(attempt, "mssql deadlock victim; running again");
                        continue;
                    }
                    return Err(query_error(e));
                }
            }
        }
    }
}

/// What a statement's reply is read as.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Count,
    Rows,
}

enum Answer {
    Count(u64),
    Rows(Vec<Row>),
}

/// Bounds `fut` by the operation timeout.
pub(crate) async fn with_timeout<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(unavailable(OperationError::OperationTimeout(timeout))),
    }
}

/// What a fenced write that changed `written` rows means: the caller's claim
/// was live (a row changed), or it was lost (none).
pub(crate) fn fenced(written: u64) -> Result<()> {
    if written == 0 {
        Err(Error::LeaseLost)
    } else {
        Ok(())
    }
}

pub(crate) fn reply_error(what: &'static str) -> Error {
    Error::backend(BACKEND, OperationError::Reply(what))
}

/// The SQL Server error number behind `e`, if the server sent one.
fn server_code(e: &Error) -> Option<u32> {
    let source = std::error::Error::source(e)?;
    source
        .downcast_ref::<tiberius::error::Error>()
        .and_then(tiberius::error::Error::code)
}

/// The first column of `row` as bytes; a `NULL` reads as empty (the column
/// is `NOT NULL`, and an empty `VARBINARY(MAX)` may come back as `NULL`).
fn bytes_at(row: Row, column: usize) -> Result<Bytes> {
    let data: ColumnData<'static> = row
        .into_iter()
        .nth(column)
        .ok_or_else(|| reply_error("a row without its value column"))?;
    let value = Vec::<u8>::from_sql_owned(data).map_err(|e| Error::backend(BACKEND, e))?;
    Ok(value.map(Bytes::from).unwrap_or_default())
}

pub(crate) fn uuid(token: &LeaseToken) -> Uuid {
    Uuid::from_bytes(*token.as_bytes())
}

/// Reads a claim's reply, a row `(Acquired, Value)`: the key is `token`'s
/// (the token it wrote), or another's (the live record it found). `None`
/// when there is no row.
pub(crate) fn claim_reply(rows: Vec<Row>, token: LeaseToken) -> Result<Option<Claim>> {
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let acquired: Option<Uuid> = row
        .try_get::<Uuid, _>(0)
        .map_err(|e| Error::backend(BACKEND, e))?;
    match acquired {
        Some(written) if written == uuid(&token) => Ok(Some(Claim::Acquired(token))),
        Some(_) => Err(reply_error("the claim wrote a token that is not its own")),
        None => Ok(Some(Claim::Existing(bytes_at(row, 1)?))),
    }
}

#[async_trait]
impl IdempotencyStore for MssqlStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        let key = key_bytes(key);
        let rows = self.query(&self.inner.statements.find, &[&key]).await?;
        rows.into_iter()
            .next()
            .map(|row| bytes_at(row, 0))
            .transpose()
    }

    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        let key = key_bytes(key);
        let (secs, millis) = ttl_parts(ttl);
        let value: &[u8] = &value;
        self.execute(
            &self.inner.statements.store,
            &[&key, &value, &secs, &millis],
        )
        .await
        .map(drop)
    }

    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        let key = key_bytes(key);
        Ok(self.execute(&self.inner.statements.remove, &[&key]).await? > 0)
    }

    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        let key = key_bytes(key);
        Ok(!self
            .query(&self.inner.statements.exists, &[&key])
            .await?
            .is_empty())
    }

    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        let key = key_bytes(key);
        let (secs, millis) = ttl_parts(lease);
        let token = LeaseToken::generate();
        let id = uuid(&token);
        let pending: &[u8] = &pending;
        let rows = self
            .query(
                &self.inner.statements.claim,
                &[&key, &pending, &secs, &millis, &id],
            )
            .await?;
        claim_reply(rows, token)?
            .ok_or_else(|| reply_error("the claim returned neither a token nor a record"))
    }

    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        let key = key_bytes(key);
        let (secs, millis) = ttl_parts(lease);
        let id = uuid(token);
        let written = self
            .execute(&self.inner.statements.extend, &[&key, &secs, &millis, &id])
            .await?;
        fenced(written)
    }

    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let key = key_bytes(key);
        let (secs, millis) = ttl_parts(ttl);
        let id = uuid(token);
        let value: &[u8] = &value;
        let written = self
            .execute(
                &self.inner.statements.complete,
                &[&key, &value, &secs, &millis, &id],
            )
            .await?;
        fenced(written)
    }

    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let key = key_bytes(key);
        let id = uuid(token);
        Ok(self
            .execute(&self.inner.statements.release, &[&key, &id])
            .await?
            > 0)
    }

    fn backend(&self) -> &'static str {
        crate::error::BACKEND
    }
}

#[async_trait]
impl PurgeExpired for MssqlStore {
    /// Deletes expired rows in batches of a thousand, each batch its own
    /// statement (and its own operation timeout), so no lock is held long.
    async fn purge_expired(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let deleted = self
                .execute(&self.inner.statements.purge, &[&PURGE_BATCH])
                .await?;
            total += deleted;
            if deleted < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
