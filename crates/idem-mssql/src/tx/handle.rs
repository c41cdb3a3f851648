//! [`IdempotentTx`]: the transaction a handler writes through, lent by the
//! engine for the handler's run ([`TxSlot`]) and given back when the
//! handler drops it.

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::slot::{Lent, Slot};
use super::wire::Tx;

/// The tiberius client of a pooled connection, as [`IdempotentTx`]
/// dereferences to it.
pub type Client = tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>>;

/// Where the transactional engine keeps a run's transaction while the
/// handler does not hold it: what [`Transactional`](crate::Transactional)
/// lends its handler, as its [`Engine::Lent`](idem_core::Engine::Lent).
/// Behind the tower layer it is in the request's extensions; the handler
/// takes the transaction with [`lend`](Self::lend).
///
/// # Examples
/// ```no_run
/// use axum::Extension;
/// use axum::http::StatusCode;
/// use idem_mssql::TxSlot;
///
/// async fn pay(Extension(slot): Extension<TxSlot>) -> StatusCode {
///     let Some(mut tx) = slot.lend() else {
///         return StatusCode::INTERNAL_SERVER_ERROR; // no transactional layer here
///     };
///     match tx.execute("INSERT INTO payments (amount) VALUES (@P1)", &[&42i32]).await {
///         Ok(_) => StatusCode::CREATED,
///         // A 5xx is not kept: everything rolls back, the key included.
///         Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
///     }
/// }
/// ```
#[derive(Clone)]
pub struct TxSlot(pub(crate) Slot<Tx>);

impl fmt::Debug for TxSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxSlot")
            .field("database", &"mssql")
            .field("home", &self.0.is_home())
            .finish()
    }
}

impl TxSlot {
    /// The transaction, for the handler's statements; `None` while another
    /// [`IdempotentTx`] holds it (it is lent to one holder at a time, and
    /// comes back when that one is dropped), or once the run is over.
    pub fn lend(&self) -> Option<IdempotentTx> {
        self.0.lend().map(IdempotentTx)
    }
}

/// The SQL Server transaction that holds an idempotency key's claim, lent
/// to the handler so that its own statements commit with the stored
/// response or not at all.
///
/// It dereferences to the connection's tiberius [`Client`], so a statement
/// runs on it as on any client: `tx.execute(sql, &[&param]).await`. The
/// transaction is `READ COMMITTED` with `XACT_ABORT` off. Do not commit or
/// roll back yourself (no `COMMIT` or `ROLLBACK` in your statements): the
/// engine does, after the handler, with the response kept, or rolls back
/// when the handler fails. A transaction your statements ended (or that
/// `XACT_ABORT ON` ended on an error) keeps no record: the run is an error,
/// and a retry runs again. Its lock
/// waits are bounded by [`Transactional::with_lock_wait`](crate::Transactional::with_lock_wait)
/// (error 1222 past it), like the claim's. Read every statement's reply to
/// its end before the handler returns; a statement cut off mid-way (a
/// timeout around it) leaves the connection in doubt, so nothing is
/// committed and the connection is closed.
///
/// Dropping the handle gives the transaction back to the engine; a handle
/// that outlives its handler (moved into a spawned task) is an error, and
/// nothing is committed.
///
/// # Examples
/// ```no_run
/// # async fn f(mut tx: idem_mssql::IdempotentTx) -> Result<(), idem_mssql::tiberius::error::Error> {
/// tx.execute("INSERT INTO payments (amount) VALUES (@P1)", &[&42i32]).await?;
/// let row = tx
///     .query("SELECT COUNT(*) FROM payments", &[])
///     .await?
///     .into_row()
///     .await?;
/// # let _ = row;
/// # Ok(()) }
/// ```
pub struct IdempotentTx(Lent<Tx>);

impl Deref for IdempotentTx {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.0.client_ref()
    }
}

impl DerefMut for IdempotentTx {
    fn deref_mut(&mut self) -> &mut Client {
        self.0.client()
    }
}

impl fmt::Debug for IdempotentTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotentTx")
            .field("database", &"mssql")
            .finish_non_exhaustive()
    }
}
