//! The protocol engine: claim, run, complete or release, replay.
//!
//! Written once over [`IdempotencyStore`]'s primitives; backends never see it.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{self, Either};

use crate::lease::{Lease, LeaseSignal};
use crate::metrics::{self, LostCompletion, Timed};
use crate::settle;
use crate::traced::Traced;
use crate::{
    Claim, Error, Fingerprint, IdempotencyStore, Record, RecordState, Result, StoreKey,
    StoredResponse,
};

/// How long a claim's lease lasts by default: the time after which a key
/// whose server crashed mid-run can be taken over. A running handler's lease
/// is renewed (every third of it, by default), so a handler may run longer.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// How long a completed record is kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a duplicate is told to wait while the first request runs, by default.
pub const DEFAULT_RETRY_HINT: Duration = Duration::from_secs(1);
/// How long, at most, the engine keeps trying to store a handler's result
/// through transient store errors, by default (never past the lease).
pub const DEFAULT_COMPLETION_BOUND: Duration = Duration::from_secs(10);

/// What the handler asks the engine to do with its result.
#[derive(Debug, Clone)]
pub enum Completion {
    /// Keep this response; retries with the same fingerprint replay it.
    Keep(StoredResponse),
    /// The request is done, but its response is too large to keep: the key is
    /// kept as "completed, response not retained", so retries are told so and
    /// never run the handler again.
    KeepNotRetained {
        /// The status the handler answered with.
        status: u16,
    },
    /// Keep nothing: the key is released so that a retry runs the handler again
    /// (a 5xx, a timeout, anything a retry may fix).
    Release,
}

/// What [`Idempotency::execute`] did.
///
/// When the handler ran, the variant says what became of its result:
/// [`Executed`](Self::Executed) (kept), [`Released`](Self::Released) or
/// [`Lost`](Self::Lost); each carries what the handler returned.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The key was free: the handler ran, this is what it returned, and its
    /// [`Completion`] was kept (with or without the response), so a retry
    /// with the same fingerprint is replayed.
    Executed(T),
    /// The key was free and the handler ran, but asked for the key to be
    /// released ([`Completion::Release`]): a retry runs the handler again
    /// (once the lease ends, if the store could not release the key now).
    Released(T),
    /// The key was free and the handler ran, but its result could not be
    /// kept: the lease ran out first (another request may hold the key now)
    /// or the store still failed when the engine stopped trying (see
    /// [`Idempotency::with_completion_bound`]). Logged as `completion_lost`
    /// with the key; a retry may run the handler again.
    Lost(T),
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
///     .execute(&key, fingerprint, |_lease: LeaseSignal| async {
///         let response = StoredResponse { status: 201, ..Default::default() };
///         (response.clone(), Completion::Keep(response))
///     })
///     .await?;
/// ```
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// Called through its own methods, not the trait: see [`Timed`].
    store: Arc<Timed>,
    lease: Duration,
    retention: Duration,
    retry_hint: Duration,
    completion_bound: Duration,
    /// `None`: a third of the lease.
    renew_every: Option<Duration>,
}

impl Idempotency {
    /// An engine over `store`, with a 10 s lease renewed every third of it
    /// while a handler runs, and 24 h retention. Every call it makes to
    /// `store` is timed into the [`metrics::STORE_DURATION`] histogram.
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self {
            store: Arc::new(Timed::new(store)),
            lease: DEFAULT_LEASE,
            retention: DEFAULT_RETENTION,
            retry_hint: DEFAULT_RETRY_HINT,
            completion_bound: DEFAULT_COMPLETION_BOUND,
            renew_every: None,
        }
    }

    /// How long a claim holds the key before another request may take it
    /// over (10 s by default): the time after which the keys of a server that
    /// crashed mid-run can run again. While a handler runs, its lease is
    /// renewed (see [`with_renewal`](Self::with_renewal)), so a handler may
    /// take longer than the lease.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often a running handler's lease is renewed (by default, every
    /// third of the lease, so that a renewal can fail twice on a store blip
    /// before the lease runs out). Zero turns renewal off: the handler must
    /// then finish within the lease. A renewal that is refused, or that does
    /// not succeed before the lease ends, loses the lease: the handler's
    /// [`LeaseSignal`] says so, and its result is not stored
    /// ([`Outcome::Lost`]).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// # use idem_core::{Idempotency, IdempotencyStore};
    /// # fn engine(store: Arc<dyn IdempotencyStore>) -> Idempotency {
    /// // A 3 s lease: a crashed server's keys run again after 3 s; a slow
    /// // handler keeps its key, renewed every second.
    /// Idempotency::new(store)
    ///     .with_lease(Duration::from_secs(3))
    ///     .with_renewal(Duration::from_secs(1))
    /// # }
    /// ```
    pub fn with_renewal(mut self, every: Duration) -> Self {
        self.renew_every = Some(every);
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

    /// How long, at most, the caller waits after its handler ran while the
    /// engine stores the result (or releases the key) through transient store
    /// errors, retrying with backoff. The lease is renewed meanwhile; once it
    /// is lost the store refuses the token and the attempts end at once.
    /// 10 s by default; zero means one attempt, as a store blip then loses
    /// the result (and a retry runs the handler again once the lease ends).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// # use idem_core::{Idempotency, IdempotencyStore};
    /// # fn engine(store: Arc<dyn IdempotencyStore>) -> Idempotency {
    /// Idempotency::new(store)
    ///     .with_lease(Duration::from_secs(30))
    ///     .with_completion_bound(Duration::from_secs(5))
    /// # }
    /// ```
    pub fn with_completion_bound(mut self, bound: Duration) -> Self {
        self.completion_bound = bound;
        self
    }

    /// The store, as the engine calls it: through [`Timed`]'s own methods,
    /// plain futures. (`self.store.claim(..)` would pick the trait's impl
    /// for `Arc<S>`, then `Timed`'s, which boxes every call's future.)
    fn timed(&self) -> &Timed {
        &self.store
    }

    /// The lease in force.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Runs `handler` at most once per `key`, or says why not.
    ///
    /// 1. Claims `key` with an in-progress record carrying `fingerprint`.
    /// 2. If the claim is acquired, runs `handler`, renewing the lease while it
    ///    runs, then keeps its [`Completion`] (fenced by the lease token) or
    ///    releases the key, and returns the handler's value as
    ///    [`Outcome::Executed`] (kept), [`Outcome::Released`] or
    ///    [`Outcome::Lost`] (could not be kept). The handler gets a
    ///    [`LeaseSignal`] that tells it when the lease is lost (its result will
    ///    then not be stored). If the handler panics, the key is released and
    ///    the panic resumes.
    /// 3. If a live record exists: another fingerprint gives
    ///    [`Outcome::Mismatch`]; an in-progress one gives [`Outcome::InFlight`];
    ///    a completed one gives [`Outcome::Replayed`].
    ///
    /// A failure to keep the result after the handler ran (the lease was lost,
    /// the store went down) is logged and the handler's value is still
    /// returned, as [`Outcome::Lost`]: the side effect happened and its caller
    /// should hear of it.
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
        F: FnOnce(LeaseSignal) -> Fut,
        Fut: Future<Output = (T, Completion)>,
    {
        let traced = self.execute_traced(key, fingerprint, None, handler);
        Ok(traced.await?.outcome)
    }

    /// [`execute`](Self::execute), keeping `request_id` (the id of the
    /// request that runs: an `x-request-id` header, a trace id) in the
    /// key's record ([`Record::request_id`]), and returning, with the
    /// outcome, the id the record kept when the key was already taken
    /// ([`Traced::original_request_id`]): a duplicate in flight or a replay
    /// can then name the request whose logs tell what happened. An id that
    /// is empty, over 255 bytes or not printable ASCII is not kept.
    ///
    /// # Errors
    /// As [`execute`](Self::execute).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use idem_core::{Completion, Fingerprint, Idempotency, Outcome, StoreKey, StoredResponse};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem_core::Result<()> {
    /// # let store = Arc::new(idem_memory::MemoryStore::new());
    /// let engine = Idempotency::new(store);
    /// let key = StoreKey::parse("idempotency:k-1")?;
    /// let fp = Fingerprint::of_request("POST", "/jobs", b"{}");
    /// let keep = || Completion::Keep(StoredResponse { status: 201, ..Default::default() });
    /// let first = engine
    ///     .execute_traced(&key, fp, Some("req-1"), |_lease| async { ((), keep()) })
    ///     .await?;
    /// assert!(matches!(first.outcome, Outcome::Executed(())));
    /// let retry = engine
    ///     .execute_traced(&key, fp, Some("req-2"), |_lease| async { ((), keep()) })
    ///     .await?;
    /// assert!(matches!(retry.outcome, Outcome::Replayed(_)));
    /// assert_eq!(retry.original_request_id.as_deref(), Some("req-1"));
    /// # Ok(()) }
    /// ```
    pub async fn execute_traced<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        request_id: Option<&str>,
        handler: F,
    ) -> Result<Traced<T>>
    where
        F: FnOnce(LeaseSignal) -> Fut,
        Fut: Future<Output = (T, Completion)>,
    {
        let pending = Record::in_progress(fingerprint, self.lease)
            .with_request_id(request_id)
            .encode();
        let claimed_at = Instant::now();
        let claim = self.timed().claim(key, pending, self.lease, claimed_at);
        let token = match claim.await? {
            Claim::Acquired(token) => token,
            Claim::Existing(bytes) => {
                return Traced::of_record(&bytes, fingerprint, self.retry_hint);
            }
        };
        let lease = Lease::new(&*self.store, key, &token, self.lease, claimed_at);

        let run = AssertUnwindSafe(handler(lease.signal())).catch_unwind();
        let done = self.renewing(&lease, run).await;
        let (value, completion) = match done {
            Ok(done) => done,
            Err(panic) => {
                if !lease.was_refused() {
                    let release = || self.timed().release(key, &token);
                    if let Err(error) = self.settle(&lease, "release", release).await {
                        tracing::warn!(%key, error = &error as &(dyn std::error::Error + 'static), "could not release the key after the handler panicked");
                    }
                }
                std::panic::resume_unwind(panic);
            }
        };
        if lease.was_refused() {
            // Renewal already logged it; the token is refused from now on.
            return Ok(Traced::ran(match completion {
                Completion::Release => Outcome::Released(value),
                _ => Outcome::Lost(value),
            }));
        }

        let state = match completion {
            Completion::Keep(response) => RecordState::Completed(response),
            Completion::KeepNotRetained { status } => RecordState::CompletedNotRetained { status },
            Completion::Release => {
                let release = || self.timed().release(key, &token);
                if let Err(error) = self.settle(&lease, "release", release).await {
                    tracing::warn!(%key, error = &error as &(dyn std::error::Error + 'static), "the key could not be released; a retry runs once its lease ends");
                }
                return Ok(Traced::ran(Outcome::Released(value)));
            }
        };
        let bytes = Record::new(fingerprint, state, self.retention)
            .with_request_id(request_id)
            .encode();
        let complete = || {
            self.timed()
                .complete(key, &token, bytes.clone(), self.retention)
        };
        let outcome = match self.settle(&lease, "complete", complete).await {
            Ok(()) => Outcome::Executed(value),
            Err(Error::LeaseLost) if self.was_kept(key, &bytes).await => {
                tracing::debug!(%key, "an attempt that timed out had kept the result");
                Outcome::Executed(value)
            }
            Err(Error::LeaseLost) => {
                metrics::completion_lost(LostCompletion::LeaseLost);
                tracing::error!(%key, event = "completion_lost", "the lease ran out before the handler's result was kept; a retry may run the handler again");
                Outcome::Lost(value)
            }
            Err(error) => {
                metrics::completion_lost(LostCompletion::StoreError);
                tracing::error!(%key, error = &error as &(dyn std::error::Error + 'static), event = "completion_lost", "the handler's result could not be kept; a retry may run the handler again once the lease ends");
                Outcome::Lost(value)
            }
        };
        Ok(Traced::ran(outcome))
    }

    /// Whether the key holds exactly the completed record `bytes`: a
    /// `complete` refused with [`Error::LeaseLost`] may follow an attempt
    /// that timed out here but ran on the store (it spent the token), and
    /// then the result was kept after all.
    async fn was_kept(&self, key: &StoreKey, bytes: &bytes::Bytes) -> bool {
        matches!(self.timed().find(key).await, Ok(Some(found)) if found == *bytes)
    }

    /// How often a running handler's lease is renewed, if at all.
    fn renew_interval(&self) -> Option<Duration> {
        let every = self.renew_every.unwrap_or(self.lease / 3);
        (!every.is_zero()).then_some(every)
    }

    /// Until when settling a claim is worth trying: the completion bound
    /// from now. The lease is renewed meanwhile, so a store that comes back
    /// slowly after a blip still gets the result; once the lease is lost the
    /// store refuses the token, which ends the attempts at once.
    fn settle_deadline(&self) -> Instant {
        Instant::now() + self.completion_bound
    }

    /// Settles the claim with `op` (`complete` or `release`) while renewing
    /// the lease: one attempt, then, only if it failed on a transient error
    /// and the completion bound leaves time, the retries of
    /// [`settle::until`]. Most settles succeed at once, and building the
    /// retries' backoff and deadline cost more than a memory store's whole
    /// `complete`.
    async fn settle<T, F, Fut>(&self, lease: &Lease<'_>, what: &'static str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = self.settle_deadline();
        match self.renewing(lease, op()).await {
            Err(error) if error.is_transient() && Instant::now() < deadline => {
                tracing::debug!(%error, "{what} failed; trying again");
                metrics::completion_retried(what);
                self.renewing(lease, settle::until(deadline, what, op))
                    .await
            }
            done => done,
        }
    }

    /// Runs `work` (the handler, then storing its result) while renewing the
    /// lease, if renewal is on.
    async fn renewing<F: Future>(&self, lease: &Lease<'_>, work: F) -> F::Output {
        let renew = async {
            if let Some(every) = self.renew_interval() {
                lease.renew_every(every).await;
            }
            std::future::pending::<Infallible>().await
        };
        match future::select(pin!(work), pin!(renew)).await {
            Either::Left((done, _)) => done,
            Either::Right((never, _)) => match never {},
        }
    }
}

impl<T> Outcome<T> {
    /// What a live record that a claim met (its bytes, as
    /// [`Claim::Existing`] gives them) means for a request with
    /// `fingerprint`: [`Mismatch`](Self::Mismatch),
    /// [`InFlight`](Self::InFlight) (told to come back after `retry_hint`,
    /// or sooner if the lease ends sooner, never under a second),
    /// [`Replayed`](Self::Replayed) or
    /// [`ReplayedNotRetained`](Self::ReplayedNotRetained). For engines
    /// other than [`Idempotency`] that claim keys their own way (the SQL
    /// stores' transactional mode).
    ///
    /// A replay and an in-flight answer are logged (`info`, in the current
    /// span) with the `original_request_id` the record keeps, if any: the
    /// request whose logs tell what happened. [`Traced::of_record`] also
    /// returns that id.
    ///
    /// # Errors
    /// [`Error::CorruptRecord`] when the bytes are not a record.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use idem_core::{Fingerprint, Outcome, Record, RecordState, StoredResponse};
    ///
    /// let fp = Fingerprint::of_request("POST", "/pay", b"{}");
    /// let done = RecordState::Completed(StoredResponse { status: 201, ..Default::default() });
    /// let bytes = Record::new(fp, done, Duration::from_secs(60)).encode();
    /// let hint = Duration::from_secs(1);
    /// assert!(matches!(Outcome::<()>::of_record(&bytes, fp, hint), Ok(Outcome::Replayed(_))));
    /// let other = Fingerprint::of_request("POST", "/pay", b"{\"x\":1}");
    /// assert!(matches!(Outcome::<()>::of_record(&bytes, other, hint), Ok(Outcome::Mismatch)));
    /// ```
    pub fn of_record(
        bytes: &bytes::Bytes,
        fingerprint: Fingerprint,
        retry_hint: Duration,
    ) -> Result<Self> {
        Ok(Traced::of_record(bytes, fingerprint, retry_hint)?.outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripted::Scripted;

    /// What the test store's `complete` does, given the record it keeps
    /// (what `find` answers) and the one it is asked to keep.
    type CompleteFn = fn(&mut Option<bytes::Bytes>, bytes::Bytes) -> Result<()>;

    async fn run(complete: CompleteFn, completion: Completion) -> Outcome<&'static str> {
        // A store that stays down is tried for 100 ms, then given up on.
        let engine = Idempotency::new(Arc::new(Scripted::completing(complete)))
            .with_completion_bound(Duration::from_millis(100));
        let key = StoreKey::parse("k").unwrap();
        let fp = Fingerprint::of_request("POST", "/", b"");
        engine
            .execute(&key, fp, |_| async { ("ran", completion) })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_outcome_says_what_became_of_the_result() {
        let kept: CompleteFn = |_, _| Ok(());
        let lost: CompleteFn = |_, _| Err(Error::LeaseLost);
        let down: CompleteFn = |_, _| Err(Error::unavailable("test", "down"));
        let keep = || Completion::Keep(StoredResponse::default());
        let not_retained = || Completion::KeepNotRetained { status: 200 };

        assert!(matches!(run(kept, keep()).await, Outcome::Executed("ran")));
        assert!(matches!(
            run(kept, not_retained()).await,
            Outcome::Executed("ran")
        ));
        assert!(matches!(
            run(kept, Completion::Release).await,
            Outcome::Released("ran")
        ));
        assert!(matches!(run(lost, keep()).await, Outcome::Lost("ran")));
        assert!(matches!(
            run(down, not_retained()).await,
            Outcome::Lost("ran")
        ));
    }

    #[tokio::test]
    async fn a_completion_whose_answer_was_lost_is_read_back() {
        // Keeps the first `complete` but answers it as if it timed out (the
        // token is spent: every later attempt is refused).
        let store = Arc::new(Scripted::completing(|kept, value| {
            if kept.is_some() {
                return Err(Error::LeaseLost);
            }
            *kept = Some(value);
            Err(Error::unavailable("test", "the answer was lost"))
        }));
        let engine = Idempotency::new(store.clone()).with_completion_bound(Duration::from_secs(5));
        let key = StoreKey::parse("k").unwrap();
        let fp = Fingerprint::of_request("POST", "/", b"");
        let keep = Completion::Keep(StoredResponse::default());
        let outcome = engine
            .execute(&key, fp, |_| async { ("ran", keep) })
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Executed("ran")), "{outcome:?}");
        // Another record at the key is not ours: the result is lost.
        store.keep(bytes::Bytes::from_static(b"someone else's"));
        let keep = Completion::Keep(StoredResponse::default());
        let outcome = engine
            .execute(&key, fp, |_| async { ("ran", keep) })
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Lost("ran")), "{outcome:?}");
    }
}
