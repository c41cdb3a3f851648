//! The transactional mode's two steps on a dialect's store: open a
//! transaction and claim the key in it; write the completed record in it and
//! commit. Same statements as the store's own primitives, run on the
//! transaction's connection instead of the pool.

use std::time::Duration;

use bytes::Bytes;
use idem_core::{LeaseToken, Result, StoreKey, async_trait};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row,
    Transaction, Type,
};

use crate::dialect::{ClaimReply, Dialect};
use crate::store::{SqlStore, err, fenced, statement};

/// What opening a transaction and claiming a key in it found.
pub(crate) enum Begun<DB: Database> {
    /// The key was free: the transaction holds its (uncommitted) claim.
    Claimed(Transaction<'static, DB>, LeaseToken),
    /// A committed record: its bytes. The transaction was rolled back.
    Existing(Bytes),
    /// Another transaction holds the key past the lock wait (or the claim
    /// was chosen as a deadlock victim). Nothing was written.
    Busy,
}

/// The two steps, for one sqlx database; the public engine holds one as a
/// trait object, so it is generic over the database and not the dialect.
#[async_trait]
pub(crate) trait TxBackend<DB: Database>: Send + Sync {
    /// Opens a transaction, bounds its lock waits by `lock_wait`, and claims
    /// `key` in it with `pending`, live for `ttl` once committed.
    async fn begin(
        &self,
        key: &StoreKey,
        pending: &[u8],
        ttl: Duration,
        lock_wait: Duration,
    ) -> Result<Begun<DB>>;

    /// A transaction with nothing in it yet (the test-only split claim).
    async fn begin_empty(&self) -> Result<Transaction<'static, DB>>;

    /// Swaps the claim for `value`, live for `ttl`, and commits everything.
    async fn commit(
        &self,
        tx: Transaction<'static, DB>,
        key: &StoreKey,
        token: &LeaseToken,
        value: &[u8],
        ttl: Duration,
    ) -> Result<()>;
}

/// Whether the database gave up on a lock: the key is busy.
fn busy<D: Dialect>(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if D::lock_busy(db.as_ref()))
}

#[async_trait]
impl<D: Dialect> TxBackend<D::Db> for SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    <D::Db as Database>::Arguments: IntoArguments<D::Db>,
    for<'a> &'a [u8]: Encode<'a, D::Db> + Type<D::Db>,
    for<'a> &'a str: Encode<'a, D::Db> + Type<D::Db>,
    for<'r> Vec<u8>: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
{
    async fn begin(
        &self,
        key: &StoreKey,
        pending: &[u8],
        ttl: Duration,
        lock_wait: Duration,
    ) -> Result<Begun<D::Db>> {
        // The wait for the lock comes on top of an operation's own time.
        let limit = self.settings().operation_timeout + lock_wait;
        self.op_within(limit, async {
            let mut tx = self.pool().begin().await.map_err(err::<D>)?;
            sqlx::query(AssertSqlSafe(D::lock_wait(lock_wait)))
                .execute(&mut *tx)
                .await
                .map_err(err::<D>)?;
            let q = self.queries();
            let token = LeaseToken::generate();
            let now = D::now();
            let claim = D::bind_key(statement::<D>(&q.claim), key)
                .bind(pending)
                .bind(&token.as_bytes()[..]);
            let claim = D::bind_now(D::bind_expiry(claim, now, ttl), now);
            let met = match D::CLAIM {
                ClaimReply::Returning => {
                    let row = match claim.fetch_optional(&mut *tx).await {
                        Ok(row) => row,
                        Err(e) if busy::<D>(&e) => return Ok(Begun::Busy),
                        Err(e) => return Err(err::<D>(e)),
                    };
                    // No row: it met a record committed after the
                    // statement's snapshot, which the read below sees.
                    if let Some(row) = row {
                        let held: Option<Vec<u8>> = row.try_get(1).map_err(err::<D>)?;
                        if held.as_deref() == Some(&token.as_bytes()[..]) {
                            return Ok(Begun::Claimed(tx, token));
                        }
                        let value: Vec<u8> = row.try_get(0).map_err(err::<D>)?;
                        return Ok(Begun::Existing(Bytes::from(value)));
                    }
                    true
                }
                ClaimReply::ReadAfter(met_live) => match claim.execute(&mut *tx).await {
                    Ok(done) => met_live(&done),
                    Err(e) if busy::<D>(&e) => return Ok(Begun::Busy),
                    Err(e) => return Err(err::<D>(e)),
                },
            };
            if !met {
                return Ok(Begun::Claimed(tx, token));
            }
            let find = D::bind_now(D::bind_key(statement::<D>(&q.find), key), now);
            let row = find.fetch_optional(&mut *tx).await.map_err(err::<D>)?;
            match row {
                Some(row) => {
                    let value: Vec<u8> = row.try_get(0).map_err(err::<D>)?;
                    Ok(Begun::Existing(Bytes::from(value)))
                }
                // It expired or went between the two statements: the
                // caller is told to come back.
                None => Ok(Begun::Busy),
            }
        })
        .await
    }

    async fn begin_empty(&self) -> Result<Transaction<'static, D::Db>> {
        let begin = async { self.pool().begin().await.map_err(err::<D>) };
        self.op_within(self.settings().operation_timeout, begin)
            .await
    }

    async fn commit(
        &self,
        mut tx: Transaction<'static, D::Db>,
        key: &StoreKey,
        token: &LeaseToken,
        value: &[u8],
        ttl: Duration,
    ) -> Result<()> {
        self.op_within(self.settings().operation_timeout, async {
            let now = D::now();
            let q = self.queries();
            let complete = D::bind_expiry(statement::<D>(&q.complete).bind(value), now, ttl);
            let complete = D::bind_key(complete, key).bind(&token.as_bytes()[..]);
            let done = D::bind_now(complete, now)
                .execute(&mut *tx)
                .await
                .map_err(err::<D>)?;
            fenced(D::rows_affected(&done))?;
            tx.commit().await.map_err(err::<D>)
        })
        .await
    }
}
