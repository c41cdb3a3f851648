//! The transactional mode: the claim, the handler's own writes and the
//! stored response commit in one database transaction, or none of them do.
//!
//! With a lease, idem promises "at most once, unless a server dies mid-run":
//! a server that dies after its side effect but before the result is stored
//! leaves a retry that runs the side effect again. When the side effect is a
//! write to the database that holds the idempotency records, there is a
//! stronger answer. The engine opens a transaction, claims the key in it,
//! lends it to the handler ([`IdempotentTx`]) for its writes, writes the
//! completed record in it and commits. A process killed at any point loses
//! the whole transaction, so the retry runs once as if nothing had happened;
//! no lease is involved.
//!
//! A duplicate that arrives while the first runs waits on the first
//! transaction's row lock (SQLite: on the database's write lock), for at
//! most [`Transactional::with_lock_wait`], using the database's own lock
//! timeout. Then it replays the committed response, or runs if the first
//! rolled back; past the wait it is [`Outcome::InFlight`].

mod backend;
#[cfg(feature = "axum")]
mod extract;
mod handle;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use idem_core::{
    Completion, DEFAULT_RETENTION, DEFAULT_RETRY_HINT, Engine, Error, Fingerprint, Outcome, Record,
    RecordState, Result, StoreKey, Traced,
};
use sqlx::Database;

pub use handle::{IdempotentTx, TxSlot};

use backend::{Begun, TxBackend};

/// How long a duplicate waits for the transaction that holds its key, by
/// default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(2);

/// The protocol engine of the transactional mode, over one of this crate's
/// stores (on database `DB`). Get one from the store:
/// `PostgresStore::transactional`, `MySqlStore::transactional`,
/// `SqliteStore::transactional`.
///
/// Each run holds one pooled connection from its claim to its commit, so
/// the pool must be as large as the number of handlers that run at once
/// (plus the duplicates waiting on them).
///
/// # Examples
/// ```
/// use idem_core::{Completion, Fingerprint, Outcome, StoredResponse, StoreKey};
/// use idem_sql::{IdempotentTx, SqliteConfig, SqliteStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let url = format!("sqlite://{}", dir.path().join("app.db").display());
/// let store = SqliteStore::connect(SqliteConfig::from_url(&url)?).await?;
/// sqlx::query("CREATE TABLE payments (amount INTEGER NOT NULL)")
///     .execute(store.pool())
///     .await?;
/// let engine = store.transactional();
///
/// let key = StoreKey::parse("pay:1")?;
/// let fp = Fingerprint::of_request("POST", "/payments", b"{\"amount\":42}");
/// let pay = |mut tx: IdempotentTx<sqlx::Sqlite>| async move {
///     let written = sqlx::query("INSERT INTO payments (amount) VALUES (42)")
///         .execute(&mut *tx)
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
/// assert!(matches!(engine.execute(&key, fp, pay).await?, Outcome::Replayed(_)));
/// let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM payments")
///     .fetch_one(store.pool())
///     .await?;
/// assert_eq!(rows, 1);
/// # Ok(()) }
/// ```
pub struct Transactional<DB: Database> {
    backend: Arc<dyn TxBackend<DB>>,
    retention: Duration,
    lock_wait: Duration,
    retry_hint: Duration,
    /// Test-only: the claim commits on its own, before the handler runs.
    split_claim: bool,
}

impl<DB: Database> Clone for Transactional<DB> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            retention: self.retention,
            lock_wait: self.lock_wait,
            retry_hint: self.retry_hint,
            split_claim: self.split_claim,
        }
    }
}

impl<DB: Database> std::fmt::Debug for Transactional<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactional")
            .field("database", &DB::NAME)
            .field("retention", &self.retention)
            .field("lock_wait", &self.lock_wait)
            .field("retry_hint", &self.retry_hint)
            .finish()
    }
}

impl<DB: Database> Transactional<DB> {
    pub(crate) fn new(backend: Arc<dyn TxBackend<DB>>) -> Self {
        Self {
            backend,
            retention: DEFAULT_RETENTION,
            lock_wait: DEFAULT_LOCK_WAIT,
            retry_hint: DEFAULT_RETRY_HINT,
            split_claim: false,
        }
    }

    /// How long a completed record is replayed (default 24 h).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long a duplicate waits for the transaction that holds its key
    /// before it is told the key is in flight (default 2 s). It is the
    /// database's own lock timeout: PostgreSQL's `lock_timeout` (for the
    /// transaction), MySQL's `innodb_lock_wait_timeout` (whole seconds, for
    /// the connection), SQLite's busy timeout (for the connection).
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// **Breaks the guarantee, for tests only**: the claim commits in a
    /// transaction of its own, and the handler's writes and the response in
    /// another, so that a crash between them leaves a claim without its
    /// writes. The suites use it to prove they see the difference.
    #[doc(hidden)]
    pub fn with_claim_committed_apart(mut self) -> Self {
        self.split_claim = true;
        self
    }

    /// The `retry_after` of [`Outcome::InFlight`] (default 1 s).
    pub fn with_retry_hint(mut self, hint: Duration) -> Self {
        self.retry_hint = hint;
        self
    }

    /// Runs `handler` at most once per `key`, in one transaction with the
    /// key's record, or says why not.
    ///
    /// 1. Opens a transaction and claims `key` in it. A committed record
    ///    with the same fingerprint is [`Outcome::Replayed`] (another is
    ///    [`Outcome::Mismatch`]); a key held by another transaction past the
    ///    lock wait is [`Outcome::InFlight`]. The handler does not run.
    /// 2. Lends the transaction to `handler` ([`IdempotentTx`]).
    /// 3. [`Completion::Keep`] (or `KeepNotRetained`): writes the completed
    ///    record in the transaction and commits, then
    ///    [`Outcome::Executed`]. [`Completion::Release`]: rolls everything
    ///    back, the claim included, then [`Outcome::Released`]. A panic rolls
    ///    everything back and resumes.
    ///
    /// # Errors
    /// A store error before the handler ran (it did not run), or when the
    /// commit failed (nothing the handler wrote was kept, and a retry runs
    /// it again); [`Error::Config`] when the handler kept its
    /// [`IdempotentTx`] past its end (nothing was committed).
    pub async fn execute<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        handler: F,
    ) -> Result<Outcome<T>>
    where
        F: FnOnce(IdempotentTx<DB>) -> Fut,
        Fut: Future<Output = (T, Completion)>,
    {
        let lend =
            |slot: TxSlot<DB>| handler(slot.lend().expect("a new slot holds its transaction"));
        Ok(self.lending(key, fingerprint, None, lend).await?.outcome)
    }

    /// [`execute`](Self::execute), lending the handler the slot rather than
    /// the transaction: what the tower layer needs ([`Engine::run`]); the
    /// records keep `request_id` ([`Engine::run_traced`]).
    async fn lending<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        request_id: Option<&str>,
        handler: F,
    ) -> Result<Traced<T>>
    where
        F: FnOnce(TxSlot<DB>) -> Fut,
        Fut: Future<Output = (T, Completion)>,
    {
        let pending = Record::in_progress(fingerprint, self.retention)
            .with_request_id(request_id)
            .encode();
        let begun = self
            .backend
            .begin(key, &pending, self.retention, self.lock_wait)
            .await?;
        let (mut tx, token) = match begun {
            Begun::Claimed(tx, token) => (tx, token),
            Begun::Existing(bytes) => {
                return Traced::of_record(&bytes, fingerprint, self.retry_hint);
            }
            Begun::Busy => {
                return Ok(Traced::ran(Outcome::InFlight {
                    retry_after: self.retry_hint.max(Duration::from_secs(1)),
                }));
            }
        };
        if self.split_claim {
            tx.commit().await.map_err(|e| Error::backend("sql", e))?;
            tx = self.backend.begin_empty().await?;
        }
        let slot = TxSlot::new(tx);
        let done = AssertUnwindSafe(handler(slot.clone())).catch_unwind().await;
        // Dropping the transaction rolls it back.
        let tx = slot.take();
        let (value, completion) = match done {
            Ok(done) => done,
            Err(panic) => {
                drop(tx);
                std::panic::resume_unwind(panic);
            }
        };
        let Some(tx) = tx else {
            tracing::error!(%key, "the handler kept its IdempotentTx past its end; nothing was committed");
            return Err(Error::config(
                "the handler kept its IdempotentTx past its end (moved into a task?); \
                 nothing was committed",
            ));
        };
        let state = match completion {
            Completion::Keep(response) => RecordState::Completed(response),
            Completion::KeepNotRetained { status } => RecordState::CompletedNotRetained { status },
            Completion::Release => {
                if let Err(error) = tx.rollback().await {
                    // The connection is closed instead; nothing was kept.
                    tracing::debug!(%key, %error, "rollback failed");
                }
                return Ok(Traced::ran(Outcome::Released(value)));
            }
        };
        let record = Record::new(fingerprint, state, self.retention)
            .with_request_id(request_id)
            .encode();
        self.backend
            .commit(tx, key, &token, &record, self.retention)
            .await?;
        Ok(Traced::ran(Outcome::Executed(value)))
    }
}

impl<DB: Database> Engine for Transactional<DB> {
    type Lent = TxSlot<DB>;

    fn run<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        handler: F,
    ) -> impl Future<Output = Result<Outcome<T>>> + Send
    where
        T: Send,
        F: FnOnce(TxSlot<DB>) -> Fut + Send,
        Fut: Future<Output = (T, Completion)> + Send,
    {
        let traced = self.lending(key, fingerprint, None, handler);
        futures::FutureExt::map(traced, |traced| Ok(traced?.outcome))
    }

    fn run_traced<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        request_id: Option<&str>,
        handler: F,
    ) -> impl Future<Output = Result<Traced<T>>> + Send
    where
        T: Send,
        F: FnOnce(TxSlot<DB>) -> Fut + Send,
        Fut: Future<Output = (T, Completion)> + Send,
    {
        self.lending(key, fingerprint, request_id, handler)
    }
}
