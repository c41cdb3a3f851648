//! The transactional mode's steps on SQL Server: a pooled connection in a
//! transaction ([`Tx`]), and the statements that open it with the claim,
//! commit it with the completed record, or roll it back.
//!
//! A [`Tx`] is *open* from `BEGIN TRANSACTION` until a `COMMIT` or
//! `ROLLBACK` the server confirmed; only then is it *closed* and its
//! connection goes back to the pool. Dropped open (the run was cancelled,
//! a statement failed or timed out, the rollback failed), it *poisons* its
//! connection: the pool closes it instead of reusing it, and the server
//! rolls back whatever the session had not committed.

use std::time::Duration;

use bb8::PooledConnection;
use idem_core::{Claim, LeaseToken, Result, StoreKey, async_trait};

use super::core::{Backend, Begun};
use super::handle::Client;
use crate::MssqlStore;
use crate::error::{ClaimFailure, query_error};
use crate::pool::Manager;
use crate::sql::{
    COMMIT_TRANSACTION, ROLLBACK_TRANSACTION, begin_transaction, key_bytes, ttl_parts,
};
use crate::store::{DEADLOCK_RETRIES, claim_reply, fenced, uuid, with_timeout};

/// A pooled connection with a transaction open on it.
pub(crate) struct Tx {
    conn: PooledConnection<'static, Manager>,
}

impl Tx {
    /// Takes a connection from the pool and begins a transaction on it.
    async fn begin(store: &MssqlStore, lock_wait: Duration) -> Result<Self> {
        let mut conn = store.pool().get_owned().await?;
        // From here until a confirmed COMMIT or ROLLBACK, dropping the
        // connection closes it.
        conn.busy = true;
        let mut tx = Self { conn };
        tx.batch(&begin_transaction(lock_wait))
            .await
            .map_err(query_error)?;
        Ok(tx)
    }

    /// The connection, for the handler's statements.
    pub(crate) fn client(&mut self) -> &mut Client {
        &mut self.conn.client
    }

    pub(crate) fn client_ref(&self) -> &Client {
        &self.conn.client
    }

    /// Runs a batch without parameters, reading its reply to the end.
    async fn batch(&mut self, sql: &str) -> tiberius::Result<()> {
        let stream = self.conn.client.simple_query(sql).await?;
        stream.into_results().await.map(drop)
    }

    /// Runs `sql` (`COMMIT_TRANSACTION` or `ROLLBACK_TRANSACTION`); once the
    /// server confirmed it, the connection may go back to the pool.
    async fn close(mut self, sql: &str) -> tiberius::Result<()> {
        self.batch(sql).await?;
        self.conn.busy = false;
        Ok(())
    }
}

impl MssqlStore {
    /// Opens a transaction and runs the claim in it: once, and again in a
    /// new transaction when the server ended a deadlock with this one.
    async fn claim_in_transaction(
        &self,
        key: &StoreKey,
        pending: &[u8],
        ttl: Duration,
        lock_wait: Duration,
    ) -> Result<Begun<Tx>> {
        let key = key_bytes(key);
        let (secs, millis) = ttl_parts(ttl);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = Tx::begin(self, lock_wait).await?;
            let token = LeaseToken::generate();
            let id = uuid(&token);
            let sql = &self.statements().claim_in_transaction;
            let reply = match tx
                .client()
                .query(sql, &[&key, &pending, &secs, &millis, &id])
                .await
            {
                Ok(stream) => stream.into_results().await,
                Err(e) => Err(e),
            };
            let error = match reply {
                Ok(sets) => {
                    let rows = sets.into_iter().flatten().collect();
                    return match claim_reply(rows, token)? {
                        Some(Claim::Acquired(token)) => Ok(Begun::Claimed(tx, token)),
                        Some(Claim::Existing(bytes)) => {
                            self.rollback(tx).await;
                            Ok(Begun::Existing(bytes))
                        }
                        // The record went between the statements (purged):
                        // the caller is told to come back.
                        None => {
                            self.rollback(tx).await;
                            Ok(Begun::Busy)
                        }
                    };
                }
                Err(e) => e,
            };
            // A server error was read to its end: the session can roll back.
            // Anything else leaves the connection in doubt; it is closed.
            if matches!(error, tiberius::error::Error::Server(_)) {
                self.rollback(tx).await;
            } else {
                drop(tx);
            }
            match ClaimFailure::of(error.code()) {
                ClaimFailure::LockTimeout => return Ok(Begun::Busy),
                ClaimFailure::Deadlock if attempt <= DEADLOCK_RETRIES => {
                    tracing::debug!(attempt, "mssql deadlock victim; claiming again");
                }
                ClaimFailure::Deadlock => return Ok(Begun::Busy),
                ClaimFailure::Other => return Err(query_error(error)),
            }
        }
    }
}

#[async_trait]
impl Backend for MssqlStore {
    type Tx = Tx;

    async fn begin(
        &self,
        key: &StoreKey,
        pending: &[u8],
        ttl: Duration,
        lock_wait: Duration,
    ) -> Result<Begun<Tx>> {
        // The wait for the lock comes on top of an operation's own time.
        let limit = self.operation_timeout() + lock_wait;
        with_timeout(limit, async {
            self.ready().await?;
            self.claim_in_transaction(key, pending, ttl, lock_wait)
                .await
        })
        .await
    }

    async fn commit_as_is(&self, tx: Tx) -> Result<()> {
        let commit = async { tx.close(COMMIT_TRANSACTION).await.map_err(query_error) };
        with_timeout(self.operation_timeout(), commit).await
    }

    async fn begin_empty(&self, lock_wait: Duration) -> Result<Tx> {
        with_timeout(self.operation_timeout(), Tx::begin(self, lock_wait)).await
    }

    async fn commit(
        &self,
        mut tx: Tx,
        key: &StoreKey,
        token: &LeaseToken,
        value: &[u8],
        ttl: Duration,
    ) -> Result<()> {
        let key = key_bytes(key);
        let (secs, millis) = ttl_parts(ttl);
        let id = uuid(token);
        with_timeout(self.operation_timeout(), async {
            let sql = &self.statements().complete_in_transaction;
            let written = match tx
                .client()
                .execute(sql, &[&key, &value, &secs, &millis, &id])
                .await
            {
                Ok(done) => done.total(),
                // Dropped open: the connection is closed, nothing commits.
                Err(e) => return Err(query_error(e)),
            };
            if let Err(lost) = fenced(written) {
                // The claim is gone: the handler's statements ended the
                // transaction (or the record was taken). Keep nothing.
                self.rollback(tx).await;
                return Err(lost);
            }
            tx.close(COMMIT_TRANSACTION).await.map_err(query_error)
        })
        .await
    }

    async fn rollback(&self, tx: Tx) {
        let rolled_back =
            tokio::time::timeout(self.operation_timeout(), tx.close(ROLLBACK_TRANSACTION)).await;
        match rolled_back {
            Ok(Ok(())) => {}
            // The connection was dropped open: closed, which rolls back.
            Ok(Err(error)) => tracing::debug!(%error, "mssql rollback failed; connection closed"),
            Err(_) => tracing::debug!("mssql rollback timed out; connection closed"),
        }
    }
}
