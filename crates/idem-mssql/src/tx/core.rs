//! The transactional mode's protocol, over any [`Backend`]: claim in a
//! transaction, lend it to the handler, then commit with the completed
//! record or roll everything back. Generic, so that every path (commit,
//! rollback, panic, a handle kept too long, a cancelled run) is tested
//! without a server; [`Transactional`](super::Transactional) runs it on SQL
//! Server.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use idem_core::{
    Completion, DEFAULT_RETENTION, DEFAULT_RETRY_HINT, Error, Fingerprint, LeaseToken, Outcome,
    Record, RecordState, Result, StoreKey, async_trait,
};

use super::slot::Slot;

/// How long a duplicate waits for the transaction that holds its key, by
/// default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(2);

/// What opening a transaction and claiming a key in it found.
pub(crate) enum Begun<Tx> {
    /// The key was free: the transaction holds its (uncommitted) claim.
    Claimed(Tx, LeaseToken),
    /// A committed record: its bytes. The transaction was rolled back.
    Existing(Bytes),
    /// Another transaction holds the key past the lock wait. Nothing was
    /// written.
    Busy,
}

/// A database's steps of the transactional mode.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// An open transaction on one connection. Dropped while open, it never
    /// commits (its connection is closed, which rolls it back).
    type Tx: Send + 'static;

    /// Opens a transaction whose lock waits last at most `lock_wait`, and
    /// claims `key` in it with `pending`, live for `ttl` once committed.
    async fn begin(
        &self,
        key: &StoreKey,
        pending: &[u8],
        ttl: Duration,
        lock_wait: Duration,
    ) -> Result<Begun<Self::Tx>>;

    /// Commits what `tx` holds as it is (the test-only split claim).
    async fn commit_as_is(&self, tx: Self::Tx) -> Result<()>;

    /// A transaction with nothing in it yet (the test-only split claim).
    async fn begin_empty(&self, lock_wait: Duration) -> Result<Self::Tx>;

    /// Swaps the claim for `value`, live for `ttl`, and commits everything.
    /// On an error nothing is committed.
    async fn commit(
        &self,
        tx: Self::Tx,
        key: &StoreKey,
        token: &LeaseToken,
        value: &[u8],
        ttl: Duration,
    ) -> Result<()>;

    /// Rolls everything back; when that fails, the connection is closed,
    /// which rolls back as well.
    async fn rollback(&self, tx: Self::Tx);
}

/// The engine's settings and its backend.
pub(crate) struct Core<B> {
    backend: Arc<B>,
    pub(crate) retention: Duration,
    pub(crate) lock_wait: Duration,
    pub(crate) retry_hint: Duration,
    /// Test-only: the claim commits on its own, before the handler runs.
    pub(crate) split_claim: bool,
}

impl<B> Clone for Core<B> {
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

impl<B: Backend> Core<B> {
    pub(crate) fn new(backend: B) -> Self {
        Self {
            backend: Arc::new(backend),
            retention: DEFAULT_RETENTION,
            lock_wait: DEFAULT_LOCK_WAIT,
            retry_hint: DEFAULT_RETRY_HINT,
            split_claim: false,
        }
    }

    /// Runs `handler` at most once per `key`, lending it the slot that holds
    /// the transaction; [`Transactional::execute`](super::Transactional::execute)
    /// describes the outcomes.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        handler: F,
    ) -> Result<Outcome<T>>
    where
        F: FnOnce(Slot<B::Tx>) -> Fut,
        Fut: Future<Output = (T, Completion)>,
    {
        let pending = Record::in_progress(fingerprint, self.retention).encode();
        let begun = self
            .backend
            .begin(key, &pending, self.retention, self.lock_wait)
            .await?;
        let (mut tx, token) = match begun {
            Begun::Claimed(tx, token) => (tx, token),
            Begun::Existing(bytes) => {
                return Outcome::of_record(&bytes, fingerprint, self.retry_hint);
            }
            Begun::Busy => {
                return Ok(Outcome::InFlight {
                    retry_after: self.retry_hint.max(Duration::from_secs(1)),
                });
            }
        };
        if self.split_claim {
            self.backend.commit_as_is(tx).await?;
            tx = self.backend.begin_empty(self.lock_wait).await?;
        }
        let slot = Slot::new(tx);
        let done = AssertUnwindSafe(handler(slot.clone())).catch_unwind().await;
        let tx = slot.take();
        let (value, completion) = match done {
            Ok(done) => done,
            Err(panic) => {
                if let Some(tx) = tx {
                    self.backend.rollback(tx).await;
                }
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
                self.backend.rollback(tx).await;
                return Ok(Outcome::Released(value));
            }
        };
        let record = Record::new(fingerprint, state, self.retention).encode();
        self.backend
            .commit(tx, key, &token, &record, self.retention)
            .await?;
        Ok(Outcome::Executed(value))
    }
}

#[cfg(test)]
mod tests {
    //! Every path of a run on a backend that records what happens to its
    //! transactions: what a server would commit, roll back, or lose with a
    //! closed connection.

    use std::sync::Mutex;

    use idem_core::StoredResponse;

    use super::*;

    /// What became of one transaction.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fate {
        Committed,
        CommittedAsIs,
        RolledBack,
        /// Dropped while open: the connection is closed, nothing commits.
        Discarded,
    }

    #[derive(Default)]
    struct Journal {
        fates: Mutex<Vec<Fate>>,
        writes: Mutex<Vec<&'static str>>,
        /// The records `commit` was given.
        kept: Mutex<Vec<RecordState>>,
    }

    impl Journal {
        fn fates(&self) -> Vec<Fate> {
            self.fates.lock().unwrap().clone()
        }
    }

    struct FakeTx {
        journal: Arc<Journal>,
        open: bool,
    }

    impl FakeTx {
        fn close(mut self, fate: Fate) {
            self.open = false;
            self.journal.fates.lock().unwrap().push(fate);
        }
    }

    impl Drop for FakeTx {
        fn drop(&mut self) {
            if self.open {
                self.journal.fates.lock().unwrap().push(Fate::Discarded);
            }
        }
    }

    /// What `begin` finds, and whether `commit` fails.
    #[derive(Clone, Copy)]
    enum Finds {
        Free,
        Record(Fingerprint),
        Busy,
    }

    struct Fake {
        journal: Arc<Journal>,
        finds: Finds,
        commit_fails: bool,
    }

    impl Fake {
        fn tx(&self) -> FakeTx {
            FakeTx {
                journal: self.journal.clone(),
                open: true,
            }
        }
    }

    #[async_trait]
    impl Backend for Fake {
        type Tx = FakeTx;

        async fn begin(
            &self,
            _: &StoreKey,
            _: &[u8],
            _: Duration,
            _: Duration,
        ) -> Result<Begun<FakeTx>> {
            Ok(match self.finds {
                Finds::Free => Begun::Claimed(self.tx(), LeaseToken::generate()),
                Finds::Record(fp) => {
                    let done = RecordState::Completed(response());
                    Begun::Existing(Record::new(fp, done, Duration::from_secs(60)).encode())
                }
                Finds::Busy => Begun::Busy,
            })
        }

        async fn commit_as_is(&self, tx: FakeTx) -> Result<()> {
            tx.close(Fate::CommittedAsIs);
            Ok(())
        }

        async fn begin_empty(&self, _: Duration) -> Result<FakeTx> {
            Ok(self.tx())
        }

        async fn commit(
            &self,
            tx: FakeTx,
            _: &StoreKey,
            _: &LeaseToken,
            value: &[u8],
            _: Duration,
        ) -> Result<()> {
            let record = Record::decode(&Bytes::copy_from_slice(value))?;
            self.journal.kept.lock().unwrap().push(record.state);
            if self.commit_fails {
                // The server refused: the connection is closed unused.
                drop(tx);
                return Err(Error::unavailable("fake", std::io::Error::other("gone")));
            }
            tx.close(Fate::Committed);
            Ok(())
        }

        async fn rollback(&self, tx: FakeTx) {
            tx.close(Fate::RolledBack);
        }
    }

    fn core(finds: Finds) -> (Core<Fake>, Arc<Journal>) {
        let journal = Arc::new(Journal::default());
        let fake = Fake {
            journal: journal.clone(),
            finds,
            commit_fails: false,
        };
        (Core::new(fake), journal)
    }

    fn fp() -> Fingerprint {
        Fingerprint::of_request("POST", "/payments", b"{}")
    }

    fn key() -> StoreKey {
        StoreKey::parse("pay:1").unwrap()
    }

    fn response() -> StoredResponse {
        StoredResponse {
            status: 201,
            body: "paid".into(),
            ..Default::default()
        }
    }

    /// A handler that writes through its transaction, then completes.
    fn writes(
        completion: Completion,
    ) -> impl FnOnce(Slot<FakeTx>) -> std::future::Ready<(u8, Completion)> {
        move |slot| {
            let tx = slot.lend().expect("the transaction is home");
            tx.journal.writes.lock().unwrap().push("insert payment");
            std::future::ready((7, completion))
        }
    }

    #[tokio::test]
    async fn kept_commits_the_writes_with_the_record() {
        let (core, journal) = core(Finds::Free);
        let outcome = core
            .run(&key(), fp(), writes(Completion::Keep(response())))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Executed(7)), "{outcome:?}");
        assert_eq!(journal.fates(), [Fate::Committed]);
        assert_eq!(*journal.writes.lock().unwrap(), ["insert payment"]);
        let kept = journal.kept.lock().unwrap();
        assert!(
            matches!(kept[..], [RecordState::Completed(ref r)] if r.body == "paid"),
            "{kept:?}"
        );
    }

    #[tokio::test]
    async fn kept_without_its_response_commits_too() {
        let (core, journal) = core(Finds::Free);
        let keep = Completion::KeepNotRetained { status: 201 };
        let outcome = core.run(&key(), fp(), writes(keep)).await.unwrap();
        assert!(matches!(outcome, Outcome::Executed(7)), "{outcome:?}");
        assert_eq!(journal.fates(), [Fate::Committed]);
        let kept = journal.kept.lock().unwrap();
        assert!(
            matches!(
                kept[..],
                [RecordState::CompletedNotRetained { status: 201 }]
            ),
            "{kept:?}"
        );
    }

    #[tokio::test]
    async fn released_rolls_everything_back() {
        let (core, journal) = core(Finds::Free);
        let outcome = core
            .run(&key(), fp(), writes(Completion::Release))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Released(7)), "{outcome:?}");
        assert_eq!(journal.fates(), [Fate::RolledBack]);
    }

    #[tokio::test]
    async fn a_panic_rolls_back_and_resumes() {
        let (core, journal) = core(Finds::Free);
        let key = key();
        let run = core.run(&key, fp(), |slot: Slot<FakeTx>| async move {
            let _tx = slot.lend().unwrap();
            panic!("the handler fails");
            #[allow(unreachable_code)]
            ((), Completion::Keep(response()))
        });
        let panicked = AssertUnwindSafe(run).catch_unwind().await;
        let message = panicked.expect_err("the panic resumes");
        assert_eq!(message.downcast_ref::<&str>(), Some(&"the handler fails"));
        assert_eq!(journal.fates(), [Fate::RolledBack]);
    }

    #[tokio::test]
    async fn a_handle_kept_past_the_handler_commits_nothing_and_is_an_error() {
        let (core, journal) = core(Finds::Free);
        let mut kept = None;
        let result = core
            .run(&key(), fp(), |slot: Slot<FakeTx>| {
                kept = slot.lend();
                std::future::ready(((), Completion::Keep(response())))
            })
            .await;
        let e = result.expect_err("a kept handle");
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
        assert!(e.to_string().contains("nothing was committed"), "{e}");
        assert!(journal.fates().is_empty(), "decided while kept");
        drop(kept);
        // Home again in a slot nobody holds any more: the transaction is
        // dropped open, its connection closed.
        assert_eq!(journal.fates(), [Fate::Discarded]);
    }

    #[tokio::test]
    async fn a_run_abandoned_mid_handler_discards_its_connection() {
        let (core, journal) = core(Finds::Free);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let key = key();
        let run = core.run(&key, fp(), |slot: Slot<FakeTx>| async move {
            let _tx = slot.lend().unwrap();
            started_tx.send(()).unwrap();
            std::future::pending::<((), Completion)>().await
        });
        tokio::select! {
            _ = run => panic!("the handler returned"),
            _ = started_rx => {}
        }
        assert_eq!(journal.fates(), [Fate::Discarded]);
    }

    #[tokio::test]
    async fn a_failed_commit_is_an_error_and_commits_nothing() {
        let journal = Arc::new(Journal::default());
        let fake = Fake {
            journal: journal.clone(),
            finds: Finds::Free,
            commit_fails: true,
        };
        let result = Core::new(fake)
            .run(&key(), fp(), writes(Completion::Keep(response())))
            .await;
        assert!(
            matches!(result, Err(Error::Unavailable { .. })),
            "{result:?}"
        );
        assert_eq!(journal.fates(), [Fate::Discarded]);
    }

    #[tokio::test]
    async fn a_busy_key_is_in_flight_and_the_handler_does_not_run() {
        let (mut core, journal) = core(Finds::Busy);
        core.retry_hint = Duration::from_millis(10);
        let outcome: Outcome<()> = core
            .run(&key(), fp(), |_: Slot<FakeTx>| async {
                panic!("the handler ran")
            })
            .await
            .unwrap();
        let Outcome::InFlight { retry_after } = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(retry_after, Duration::from_secs(1), "never under a second");
        assert!(journal.fates().is_empty());
    }

    #[tokio::test]
    async fn a_committed_record_replays_or_mismatches() {
        let (core, _) = core(Finds::Record(fp()));
        let never = |_: Slot<FakeTx>| async { panic!("the handler ran") };
        let outcome: Outcome<()> = core.run(&key(), fp(), never).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Replayed(ref r) if r.body == "paid"),
            "{outcome:?}"
        );
        let other = Fingerprint::of_request("POST", "/payments", b"{\"other\":1}");
        let (core, _) = self::core(Finds::Record(other));
        let outcome: Outcome<()> = core.run(&key(), fp(), never).await.unwrap();
        assert!(matches!(outcome, Outcome::Mismatch), "{outcome:?}");
    }

    #[tokio::test]
    async fn the_split_claim_commits_the_claim_apart_and_runs_in_a_second_transaction() {
        let (mut core, journal) = core(Finds::Free);
        core.split_claim = true;
        let outcome = core
            .run(&key(), fp(), writes(Completion::Release))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Released(7)), "{outcome:?}");
        assert_eq!(journal.fates(), [Fate::CommittedAsIs, Fate::RolledBack]);
    }
}
