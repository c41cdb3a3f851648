//! [`IdempotentTx`]: the transaction a handler writes through, lent by the
//! engine for the handler's run ([`TxSlot`]) and given back when the
//! handler drops it.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::{Database, Transaction};

/// Where the transactional engine keeps a run's transaction while the
/// handler does not hold it: what [`Transactional`](crate::Transactional)
/// lends its handler, as its [`Engine::Lent`](idem_core::Engine::Lent). The
/// handler takes the transaction with [`lend`](Self::lend); behind the tower
/// layer, the slot is in the request's extensions and the [`IdempotentTx`]
/// extractor (feature `axum`) takes it.
pub struct TxSlot<DB: Database>(Arc<Mutex<Option<Transaction<'static, DB>>>>);

impl<DB: Database> fmt::Debug for TxSlot<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let home = self.lock().is_some();
        f.debug_struct("TxSlot")
            .field("database", &DB::NAME)
            .field("lent", &!home)
            .finish()
    }
}

impl<DB: Database> Clone for TxSlot<DB> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<DB: Database> TxSlot<DB> {
    pub(crate) fn new(tx: Transaction<'static, DB>) -> Self {
        Self(Arc::new(Mutex::new(Some(tx))))
    }

    fn lock(&self) -> MutexGuard<'_, Option<Transaction<'static, DB>>> {
        // Every change under the lock is one `Option::take` or assignment.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The transaction, if it is home (no handle holds it).
    pub(crate) fn take(&self) -> Option<Transaction<'static, DB>> {
        self.lock().take()
    }

    /// The transaction, for the handler's writes; `None` while another
    /// [`IdempotentTx`] holds it (it is lent to one holder at a time, and
    /// comes back when that one is dropped), or once the run is over.
    pub fn lend(&self) -> Option<IdempotentTx<DB>> {
        let tx = self.take()?;
        Some(IdempotentTx {
            tx: Some(tx),
            home: self.clone(),
        })
    }
}

/// The database transaction that holds an idempotency key's claim, lent to
/// the handler so that its own writes commit with the stored response or
/// not at all.
///
/// It dereferences to the connection, so a query runs on it as on any sqlx
/// connection: `sqlx::query(...).execute(&mut *tx)`. Do not commit or roll
/// it back: the engine does, after the handler, with the response kept (or
/// rolled back when the handler fails). Dropping the handle gives the
/// transaction back to the engine; a handle that outlives its handler (moved
/// into a spawned task) is an error, and nothing is committed.
///
/// # Examples
/// ```no_run
/// # async fn f(mut tx: idem_sql::IdempotentTx<sqlx::Sqlite>) -> Result<(), sqlx::Error> {
/// sqlx::query("INSERT INTO payments (amount) VALUES (?)")
///     .bind(42)
///     .execute(&mut *tx)
///     .await?;
/// # Ok(()) }
/// ```
pub struct IdempotentTx<DB: Database> {
    tx: Option<Transaction<'static, DB>>,
    home: TxSlot<DB>,
}

impl<DB: Database> Deref for IdempotentTx<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        self.tx
            .as_ref()
            .expect("the transaction is only taken on drop")
    }
}

impl<DB: Database> DerefMut for IdempotentTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        self.tx
            .as_mut()
            .expect("the transaction is only taken on drop")
    }
}

impl<DB: Database> Drop for IdempotentTx<DB> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            *self.home.lock() = Some(tx);
        }
    }
}

impl<DB: Database> fmt::Debug for IdempotentTx<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotentTx")
            .field("database", &DB::NAME)
            .finish_non_exhaustive()
    }
}
