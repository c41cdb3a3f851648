//! The transactional mode's cases, shared by the three SQL backends: the
//! claim, the handler's writes and the stored response commit together or
//! not at all. Each backend's `tx` module stamps them with [`tx_cases!`].
//!
//! The handler's side effect is a row in a business table with no unique
//! constraint, so that a second run would show as a second row.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use idem_core::{Completion, Fingerprint, Outcome, StoreKey, StoredResponse};
use idem_sql::sqlx::{self, AssertSqlSafe, ColumnIndex, Database, Decode, Executor, Pool, Type};
use idem_sql::{IdempotentTx, Transactional};

/// A transactional engine, the pool of its store, and a business table.
pub(crate) struct TxSubject<DB: Database> {
    pub(crate) engine: Transactional<DB>,
    pub(crate) pool: Pool<DB>,
    /// A fresh table `(k TEXT)` for the handlers' rows.
    pub(crate) table: String,
    /// Ends the connection of the session whose id the handler read with
    /// `session_id` (none on SQLite, which has no server).
    pub(crate) kill: Option<(&'static str, &'static str)>,
}

fn fp() -> Fingerprint {
    Fingerprint::of_request("POST", "/payments", b"{\"amount\":1}")
}

fn key() -> StoreKey {
    StoreKey::parse(format!("tx:{}", uuid::Uuid::new_v4().simple())).unwrap()
}

fn paid() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![],
        body: Bytes::from_static(b"paid"),
    }
}

impl<DB: Database> TxSubject<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: sqlx::IntoArguments<DB>,
    i64: Type<DB> + for<'r> Decode<'r, DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Creates the business table.
    pub(crate) async fn create_table(&self) {
        let sql = format!("CREATE TABLE {} (k VARCHAR(255) NOT NULL)", self.table);
        sqlx::query(AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// The rows the handlers wrote for `key`.
    async fn rows(&self, key: &StoreKey) -> i64 {
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE k = '{}'",
            self.table,
            key.as_str()
        );
        sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The handler's side effect: one row for `key`, in its transaction.
    async fn write(&self, tx: &mut IdempotentTx<DB>, key: &StoreKey) {
        let sql = format!("INSERT INTO {} (k) VALUES ('{}')", self.table, key.as_str());
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await
            .unwrap();
    }

    /// Runs a handler that writes its row, waits `hold`, then completes
    /// with `completion`.
    async fn run(
        &self,
        key: &StoreKey,
        hold: Duration,
        completion: Completion,
        runs: &AtomicUsize,
    ) -> Outcome<()> {
        self.engine
            .execute(key, fp(), |mut tx| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                self.write(&mut tx, key).await;
                tokio::time::sleep(hold).await;
                ((), completion)
            })
            .await
            .unwrap()
    }

    /// Kept: the row and the record commit together; a retry replays and
    /// writes nothing.
    pub(crate) async fn commit_on_keep(&self) {
        let k = key();
        let runs = AtomicUsize::new(0);
        let first = self
            .run(&k, Duration::ZERO, Completion::Keep(paid()), &runs)
            .await;
        assert!(matches!(first, Outcome::Executed(())), "{first:?}");
        assert_eq!(self.rows(&k).await, 1);
        let retry = self
            .run(&k, Duration::ZERO, Completion::Keep(paid()), &runs)
            .await;
        assert!(
            matches!(retry, Outcome::Replayed(ref r) if r.body == "paid"),
            "{retry:?}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran twice");
        assert_eq!(self.rows(&k).await, 1, "a replay wrote a row");
    }

    /// Released (a 5xx or an error): the row and the claim roll back; a
    /// retry runs again and writes the one row.
    pub(crate) async fn rollback_on_release(&self) {
        let k = key();
        let runs = AtomicUsize::new(0);
        let first = self
            .run(&k, Duration::ZERO, Completion::Release, &runs)
            .await;
        assert!(matches!(first, Outcome::Released(())), "{first:?}");
        assert_eq!(self.rows(&k).await, 0, "a released run left its row");
        let retry = self
            .run(&k, Duration::ZERO, Completion::Keep(paid()), &runs)
            .await;
        assert!(matches!(retry, Outcome::Executed(())), "{retry:?}");
        assert_eq!(self.rows(&k).await, 1);
    }

    /// A panic rolls everything back and resumes; a retry runs again.
    pub(crate) async fn rollback_on_panic(&self) {
        let k = key();
        let kr = &k;
        let run = self.engine.execute(&k, fp(), |mut tx| async move {
            self.write(&mut tx, kr).await;
            panic!("the handler fails");
            #[allow(unreachable_code)]
            ((), Completion::Keep(paid()))
        });
        let panicked = AssertUnwindSafe(run).catch_unwind().await;
        assert!(panicked.is_err(), "the panic did not resume");
        assert_eq!(self.rows(&k).await, 0, "a panicked run left its row");
        let runs = AtomicUsize::new(0);
        let retry = self
            .run(&k, Duration::ZERO, Completion::Keep(paid()), &runs)
            .await;
        assert!(matches!(retry, Outcome::Executed(())), "{retry:?}");
    }

    /// A handler that keeps its transaction past its end gets an error, and
    /// nothing commits.
    pub(crate) async fn a_kept_transaction_commits_nothing(&self) {
        let k = key();
        let kr = &k;
        let mut kept = None;
        let result = self
            .engine
            .execute(&k, fp(), |mut tx| {
                let kept = &mut kept;
                async move {
                    self.write(&mut tx, kr).await;
                    *kept = Some(tx);
                    ((), Completion::Keep(paid()))
                }
            })
            .await;
        assert!(result.is_err(), "{result:?}");
        drop(kept);
        assert_eq!(self.rows(&k).await, 0);
    }

    /// A duplicate that arrives while the first runs waits for its commit,
    /// then replays; when the first rolls back, the duplicate runs.
    pub(crate) async fn a_racing_duplicate_waits_then_replays(&self) {
        for (completion, expect_rows) in [(Completion::Keep(paid()), 1), (Completion::Release, 1)] {
            let releases = matches!(completion, Completion::Release);
            let k = key();
            let runs = AtomicUsize::new(0);
            let hold = Duration::from_millis(500);
            let (first, dup) = tokio::join!(self.run(&k, hold, completion, &runs), async {
                super::first_started(&runs).await;
                self.run(&k, Duration::ZERO, Completion::Keep(paid()), &runs)
                    .await
            });
            if releases {
                assert!(matches!(first, Outcome::Released(())), "{first:?}");
                assert!(
                    matches!(dup, Outcome::Executed(())),
                    "after a rollback: {dup:?}"
                );
            } else {
                assert!(matches!(first, Outcome::Executed(())), "{first:?}");
                assert!(
                    matches!(dup, Outcome::Replayed(_)),
                    "after a commit: {dup:?}"
                );
            }
            assert_eq!(self.rows(&k).await, expect_rows);
        }
    }

    /// A duplicate whose wait runs out is told the key is in flight, and
    /// writes nothing; the first commits.
    pub(crate) async fn a_duplicate_past_the_lock_wait_is_in_flight(&self, wait: Duration) {
        let engine = self.engine.clone().with_lock_wait(wait);
        let k = key();
        let runs = AtomicUsize::new(0);
        let hold = wait * 3;
        let (first, dup) =
            tokio::join!(self.run(&k, hold, Completion::Keep(paid()), &runs), async {
                super::first_started(&runs).await;
                engine
                    .execute(&k, fp(), |_| async { ((), Completion::Keep(paid())) })
                    .await
                    .unwrap()
            });
        assert!(matches!(first, Outcome::Executed(())), "{first:?}");
        assert!(matches!(dup, Outcome::InFlight { .. }), "{dup:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(self.rows(&k).await, 1);
    }

    /// The connection is killed in the middle of the handler (the server
    /// ends the session, as when the process dies): the commit fails, and
    /// nothing is left; a retry runs once. Without a server, the run is
    /// abandoned mid-handler (the task is dropped), with the same result.
    pub(crate) async fn a_killed_connection_leaves_nothing(&self) {
        let k = key();
        let kr = &k;
        match self.kill {
            Some((session_id, kill)) => {
                let result = self
                    .engine
                    .execute(&k, fp(), |mut tx| async move {
                        self.write(&mut tx, kr).await;
                        let id: i64 = sqlx::query_scalar(session_id)
                            .fetch_one(&mut *tx)
                            .await
                            .unwrap();
                        let sql = kill.replace("{}", &id.to_string());
                        sqlx::query(AssertSqlSafe(sql))
                            .execute(&self.pool)
                            .await
                            .unwrap();
                        ((), Completion::Keep(paid()))
                    })
                    .await;
                assert!(
                    result.is_err(),
                    "a commit on a killed connection: {result:?}"
                );
            }
            None => {
                let (started_tx, started_rx) = tokio::sync::oneshot::channel();
                let run = self.engine.execute(&k, fp(), |mut tx| async move {
                    self.write(&mut tx, kr).await;
                    started_tx.send(()).unwrap();
                    std::future::pending::<()>().await;
                    ((), Completion::Keep(paid()))
                });
                tokio::select! {
                    _ = run => panic!("the handler returned"),
                    _ = started_rx => {}
                }
            }
        }
        assert_eq!(self.rows(&k).await, 0, "a killed run left its row");
        let runs = AtomicUsize::new(0);
        let retry = self
            .run(&k, Duration::ZERO, Completion::Keep(paid()), &runs)
            .await;
        assert!(matches!(retry, Outcome::Executed(())), "{retry:?}");
        assert_eq!(self.rows(&k).await, 1);
    }

    /// The cases can fail: with the claim committed apart from the
    /// handler's writes (a test-only switch), a rollback or a killed
    /// connection leaves the key claimed, and the cases that check it fail.
    pub(crate) async fn a_split_transaction_is_caught(&self) {
        let split = TxSubject {
            engine: self.engine.clone().with_claim_committed_apart(),
            pool: self.pool.clone(),
            table: self.table.clone(),
            kill: self.kill,
        };
        let release = AssertUnwindSafe(split.rollback_on_release()).catch_unwind();
        assert!(
            release.await.is_err(),
            "a split claim passed rollback_on_release"
        );
        let killed = AssertUnwindSafe(split.a_killed_connection_leaves_nothing()).catch_unwind();
        assert!(
            killed.await.is_err(),
            "a split claim passed a_killed_connection_leaves_nothing"
        );
    }

    /// 64 requests with one key at once: one row, one run; every other one
    /// replays or is told it is in flight.
    pub(crate) async fn racing_requests_write_once(self: &Arc<Self>) {
        let k = key();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut racers = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (subject, k, runs) = (self.clone(), k.clone(), runs.clone());
            racers.spawn(async move {
                subject
                    .run(
                        &k,
                        Duration::from_millis(50),
                        Completion::Keep(paid()),
                        &runs,
                    )
                    .await
            });
        }
        let mut executed = 0;
        while let Some(outcome) = racers.join_next().await {
            match outcome.unwrap() {
                Outcome::Executed(()) => executed += 1,
                Outcome::Replayed(_) | Outcome::InFlight { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(executed, 1, "{executed} of 64 racing requests ran");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(self.rows(&k).await, 1, "the racers wrote more than one row");
    }
}

/// Stamps one `#[tokio::test]` per case on the subject `$setup` builds
/// (`async fn() -> Option<Arc<TxSubject<DB>>>`), with `$wait` the lock wait
/// of the in-flight case (MySQL counts it in whole seconds).
macro_rules! tx_cases {
    ($setup:path, $wait:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn commit_on_keep() {
            if let Some(s) = $setup().await {
                s.commit_on_keep().await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn rollback_on_release() {
            if let Some(s) = $setup().await {
                s.rollback_on_release().await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn rollback_on_panic() {
            if let Some(s) = $setup().await {
                s.rollback_on_panic().await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_kept_transaction_commits_nothing() {
            if let Some(s) = $setup().await {
                s.a_kept_transaction_commits_nothing().await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_racing_duplicate_waits_then_replays() {
            if let Some(s) = $setup().await {
                s.a_racing_duplicate_waits_then_replays().await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_duplicate_past_the_lock_wait_is_in_flight() {
            if let Some(s) = $setup().await {
                s.a_duplicate_past_the_lock_wait_is_in_flight($wait).await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_killed_connection_leaves_nothing() {
            if let Some(s) = $setup().await {
                s.a_killed_connection_leaves_nothing().await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_split_transaction_is_caught() {
            if let Some(s) = $setup().await {
                s.a_split_transaction_is_caught().await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn racing_requests_write_once() {
            if let Some(s) = $setup().await {
                s.racing_requests_write_once().await;
            }
        }
    };
}

pub(crate) use tx_cases;
