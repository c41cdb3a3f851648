//! The transactional mode: the claim, the handler's own statements and the
//! stored response commit in one SQL Server transaction, or none of them do.
//!
//! With a lease, idem promises "at most once, unless a server dies mid-run".
//! When the side effect is a write to the database that holds the
//! idempotency records, this mode promises once: the engine takes a pooled
//! connection, begins a transaction, claims the key in it, lends it to the
//! handler ([`IdempotentTx`]) for its statements, writes the completed
//! record in it and commits. A process killed at any point closes the
//! connection, and SQL Server rolls the whole transaction back, so the retry
//! runs once as if nothing had happened; no lease is involved.
//!
//! A duplicate that arrives while the first runs waits on the lock of the
//! key's row, for at most [`Transactional::with_lock_wait`] (SQL Server's
//! `SET LOCK_TIMEOUT`). Then it replays the committed response, or runs if
//! the first rolled back; past the wait (error 1222) it is
//! [`Outcome::InFlight`].

mod core;
#[cfg(feature = "axum")]
mod extract;
mod handle;
mod slot;
mod wire;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use idem_core::{Completion, Engine, Fingerprint, Outcome, Result, StoreKey};

use crate::MssqlStore;

pub use self::core::DEFAULT_LOCK_WAIT;
pub use handle::{Client, IdempotentTx, TxSlot};

use self::core::Core;

/// The protocol engine of the transactional mode, over an [`MssqlStore`]'s
/// table and pool. Get one with [`MssqlStore::transactional`]; the tower
/// layer takes it with `IdempotencyLayer::from_engine`, and lends the
/// handler a [`TxSlot`] in the request's extensions.
///
/// Each run holds one pooled connection from its claim to its commit, so
/// the pool ([`MssqlConfig::with_max_connections`](crate::MssqlConfig::with_max_connections))
/// must be as large as the number of handlers that run at once, plus the
/// duplicates waiting on them. Every step is bounded: the claim by the
/// operation timeout plus the lock wait, the commit and a rollback by the
/// operation timeout; past it the run is [`Error::Unavailable`](idem_core::Error::Unavailable)
/// and the connection is closed, which rolls back.
///
/// # Examples
/// ```no_run
/// use idem_core::{Completion, Fingerprint, Outcome, StoreKey, StoredResponse};
/// use idem_mssql::{IdempotentTx, MssqlConfig, MssqlStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = MssqlConfig::parse(
///     "Server=tcp:127.0.0.1,1433;Database=shop;User Id=app;Password=...;TrustServerCertificate=true",
/// )?
/// .with_max_connections(40);
/// let engine = MssqlStore::connect(config).await?.transactional();
///
/// let key = StoreKey::parse("pay:1")?;
/// let fp = Fingerprint::of_request("POST", "/payments", b"{\"amount\":42}");
/// let pay = |mut tx: IdempotentTx| async move {
///     let written = tx
///         .execute("INSERT INTO payments (amount) VALUES (@P1)", &[&42i32])
///         .await;
///     match written {
///         Ok(_) => {
///             let paid = StoredResponse { status: 201, body: "paid".into(), ..Default::default() };
///             (paid.clone(), Completion::Keep(paid))
///         }
///         // Nothing is kept, the key included: a retry runs again.
///         Err(_) => (StoredResponse { status: 500, ..Default::default() }, Completion::Release),
///     }
/// };
/// assert!(matches!(engine.execute(&key, fp, pay).await?, Outcome::Executed(_)));
/// // The retry replays: no second payment.
/// assert!(matches!(engine.execute(&key, fp, pay).await?, Outcome::Replayed(_)));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Transactional {
    core: Core<MssqlStore>,
}

impl fmt::Debug for Transactional {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transactional")
            .field("database", &"mssql")
            .field("retention", &self.core.retention)
            .field("lock_wait", &self.core.lock_wait)
            .field("retry_hint", &self.core.retry_hint)
            .finish()
    }
}

impl MssqlStore {
    /// The transactional mode on this store's table and pool: the claim,
    /// the handler's statements and the stored response in one transaction.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem_core::Result<()> {
    /// use std::time::Duration;
    /// use idem_mssql::{MssqlConfig, MssqlStore};
    ///
    /// let store = MssqlStore::connect_lazy(MssqlConfig::new("127.0.0.1"))?;
    /// let engine = store.transactional().with_lock_wait(Duration::from_millis(500));
    /// assert!(format!("{engine:?}").contains("lock_wait: 500ms"));
    /// # Ok(()) }
    /// ```
    pub fn transactional(&self) -> Transactional {
        Transactional {
            core: Core::new(self.clone()),
        }
    }
}

impl Transactional {
    /// How long a completed record is replayed (default 24 h).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.core.retention = retention;
        self
    }

    /// How long a duplicate waits for the transaction that holds its key
    /// before it is told the key is in flight (default 2 s). It is SQL
    /// Server's own lock timeout (`SET LOCK_TIMEOUT`, in milliseconds), set
    /// for the session when the transaction begins and reset when it ends,
    /// so it bounds the handler's own lock waits too.
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.core.lock_wait = wait;
        self
    }

    /// The `retry_after` of [`Outcome::InFlight`] (default 1 s, never
    /// under 1 s).
    pub fn with_retry_hint(mut self, hint: Duration) -> Self {
        self.core.retry_hint = hint;
        self
    }

    /// **Breaks the guarantee, for tests only**: the claim commits in a
    /// transaction of its own, and the handler's statements and the
    /// response in another, so that a crash between them leaves a claim
    /// without its writes. The suites use it to prove they see the
    /// difference.
    #[doc(hidden)]
    pub fn with_claim_committed_apart(mut self) -> Self {
        self.core.split_claim = true;
        self
    }

    /// Runs `handler` at most once per `key`, in one transaction with the
    /// key's record, or says why not.
    ///
    /// 1. Takes a pooled connection, begins a transaction and claims `key`
    ///    in it. A committed record with the same fingerprint is
    ///    [`Outcome::Replayed`] (another is [`Outcome::Mismatch`]); a key
    ///    held by another transaction past the lock wait is
    ///    [`Outcome::InFlight`]. The handler does not run.
    /// 2. Lends the transaction to `handler` ([`IdempotentTx`]).
    /// 3. [`Completion::Keep`] (or `KeepNotRetained`): writes the completed
    ///    record in the transaction and commits, then
    ///    [`Outcome::Executed`]. [`Completion::Release`]: rolls everything
    ///    back, the claim included, then [`Outcome::Released`]. A panic
    ///    rolls everything back and resumes. A run dropped mid-way (its
    ///    task cancelled) closes the connection, which rolls back.
    ///
    /// # Errors
    /// A store error before the handler ran (it did not run), or when the
    /// commit failed (nothing the handler wrote was kept, and a retry runs
    /// it again); [`Error::Config`](idem_core::Error::Config) when the
    /// handler kept its [`IdempotentTx`] past its end (nothing was
    /// committed).
    pub async fn execute<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        handler: F,
    ) -> Result<Outcome<T>>
    where
        F: FnOnce(IdempotentTx) -> Fut,
        Fut: Future<Output = (T, Completion)>,
    {
        let lend = |slot| {
            let tx = TxSlot(slot).lend();
            handler(tx.expect("a new slot holds its transaction"))
        };
        self.core.run(key, fingerprint, lend).await
    }
}

impl Engine for Transactional {
    type Lent = TxSlot;

    fn run<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        handler: F,
    ) -> impl Future<Output = Result<Outcome<T>>> + Send
    where
        T: Send,
        F: FnOnce(TxSlot) -> Fut + Send,
        Fut: Future<Output = (T, Completion)> + Send,
    {
        self.core
            .run(key, fingerprint, move |slot| handler(TxSlot(slot)))
    }
}
