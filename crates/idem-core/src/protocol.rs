//! The protocol engine: claim, run, complete or release, replay.
//!
//! Written once over [`IdempotencyStore`]'s primitives; backends never see it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use crate::{
    Claim, Error, Fingerprint, IdempotencyStore, Record, RecordState, Result, StoreKey,
    StoredResponse,
};

/// How long a claim's lease lasts by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// How long a completed record is kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a duplicate is told to wait while the first request runs, by default.
pub const DEFAULT_RETRY_HINT: Duration = Duration::from_secs(1);

/// What the handler asks the engine to do with its result.
#[derive(Debug, Clone)]
pub enum Completion {
    /// Keep this response; retries with the same fingerprint replay it.
    Keep(StoredResponse),
    /// The request is done, but its response is too large to keep: retries are
    /// told so and never run the handler again.
    KeepWithoutResponse {
        /// The status the handler answered with.
        status: u16,
    },
    /// Keep nothing: the key is released so that a retry runs the handler again
    /// (a 5xx, a timeout, anything a retry may fix).
    Release,
}

/// What [`Idempotency::execute`] did.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The key was free: the handler ran and this is what it returned.
    Executed(T),
    /// The key had a completed record with the same fingerprint: its response.
    Replayed(StoredResponse),
    /// The key had completed with the same fingerprint, but its response was
    /// not retained (too large).
    ReplayedNotRetained {
        /// The status the original request got.
        status: u16,
    },
    /// Another request with the same key and fingerprint is still running.
    InFlight {
        /// When it is worth trying again: the engine's retry hint (1 s by
        /// default), or less if the running claim's lease ends sooner; never
        /// under one second.
        retry_after: Duration,
    },
    /// The key was used with a different request (other fingerprint).
    Mismatch,
}

impl<T> Outcome<T> {
    /// A short, stable name for logs and metrics: `executed`, `replayed`,
    /// `in_flight`, `mismatch`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Executed(_) => "executed",
            Self::Replayed(_) | Self::ReplayedNotRetained { .. } => "replayed",
            Self::InFlight { .. } => "in_flight",
            Self::Mismatch => "mismatch",
        }
    }
}

/// The idempotency protocol over any [`IdempotencyStore`].
///
/// Cheap to clone; holds no lock of its own, so requests on different keys
/// never wait for each other here.
///
/// # Examples
/// ```ignore
/// // With any store, for example idem_memory::MemoryStore:
/// let engine = Idempotency::new(Arc::new(MemoryStore::new()))
///     .with_lease(Duration::from_secs(30));
/// let outcome = engine
///     .execute(&key, fingerprint, || async {
///         let response = StoredResponse { status: 201, ..Default::default() };
///         (response.clone(), Completion::Keep(response))
///     })
///     .await?;
/// ```
#[derive(Debug, Clone)]
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    lease: Duration,
    retention: Duration,
    retry_hint: Duration,
}

impl Idempotency {
    /// An engine over `store`, with a 60 s lease and 24 h retention.
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self {
            store,
            lease: DEFAULT_LEASE,
            retention: DEFAULT_RETENTION,
            retry_hint: DEFAULT_RETRY_HINT,
        }
    }

    /// How long a claim holds the key before another request may take it over
    /// (set it above the slowest handler).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long a completed record is replayed.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long a duplicate of a running request is told to wait
    /// ([`Outcome::InFlight`]); most handlers finish well within the lease,
    /// so the hint is short rather than the whole lease.
    pub fn with_retry_hint(mut self, hint: Duration) -> Self {
        self.retry_hint = hint;
        self
    }

    /// The store behind the engine.
    pub fn store(&self) -> &Arc<dyn IdempotencyStore> {
        &self.store
    }

    /// The lease in force.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The retention in force.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Runs `handler` at most once per `key`, or says why not.
    ///
    /// 1. Claims `key` with an in-progress record carrying `fingerprint`.
    /// 2. If the claim is acquired, runs `handler`, then keeps its
    ///    [`Completion`] (fenced by the lease token) or releases the key; the
    ///    handler's value is returned as [`Outcome::Executed`]. If the handler
    ///    panics, the key is released and the panic resumes.
    /// 3. If a live record exists: another fingerprint gives
    ///    [`Outcome::Mismatch`]; an in-progress one gives [`Outcome::InFlight`];
    ///    a completed one gives [`Outcome::Replayed`].
    ///
    /// A failure to keep the result after the handler ran (the lease was lost,
    /// the store went down) is logged and the handler's value is still
    /// returned: the side effect happened and its caller should hear of it.
    ///
    /// # Errors
    /// The claim's store error ([`Error::Unavailable`] when the store is down),
    /// or [`Error::CorruptRecord`] when the existing record cannot be read. The
    /// handler does not run in either case.
    pub async fn execute<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        handler: F,
    ) -> Result<Outcome<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = (T, Completion)>,
    {
        let pending = Record::in_progress(fingerprint, self.lease).encode();
        let token = match self.store.claim(key, pending, self.lease).await? {
            Claim::Acquired(token) => token,
            Claim::Existing(bytes) => return self.existing(&bytes, fingerprint),
        };

        let (value, completion) = match AssertUnwindSafe(handler()).catch_unwind().await {
            Ok(done) => done,
            Err(panic) => {
                if let Err(error) = self.store.release(key, &token).await {
                    tracing::warn!(%key, %error, "could not release the key after the handler panicked");
                }
                std::panic::resume_unwind(panic);
            }
        };

        let record = |state| Record::new(fingerprint, state, self.retention);
        let kept = match completion {
            Completion::Keep(response) => {
                let bytes = record(RecordState::Completed(response)).encode();
                self.store
                    .complete(key, &token, bytes, self.retention)
                    .await
            }
            Completion::KeepWithoutResponse { status } => {
                let bytes = record(RecordState::CompletedNotRetained { status }).encode();
                self.store
                    .complete(key, &token, bytes, self.retention)
                    .await
            }
            Completion::Release => self.store.release(key, &token).await.map(drop),
        };
        match kept {
            Ok(()) => {}
            Err(Error::LeaseLost) => {
                tracing::warn!(%key, "the lease ran out before the handler finished; its result was not kept")
            }
            Err(error) => tracing::warn!(%key, %error, "the handler's result could not be kept"),
        }
        Ok(Outcome::Executed(value))
    }

    fn existing<T>(&self, bytes: &bytes::Bytes, fingerprint: Fingerprint) -> Result<Outcome<T>> {
        let record = Record::decode(bytes)?;
        if record.fingerprint != fingerprint {
            return Ok(Outcome::Mismatch);
        }
        Ok(match record.state {
            RecordState::InProgress { lease } => {
                let elapsed = record.created_at.elapsed().unwrap_or_default();
                let left = lease.saturating_sub(elapsed);
                Outcome::InFlight {
                    retry_after: left.min(self.retry_hint).max(Duration::from_secs(1)),
                }
            }
            RecordState::Completed(response) => Outcome::Replayed(response),
            RecordState::CompletedNotRetained { status } => Outcome::ReplayedNotRetained { status },
        })
    }
}
