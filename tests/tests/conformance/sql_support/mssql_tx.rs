//! The transactional mode's cases on SQL Server: the case list of
//! [`tx`](super::tx), whose types are sqlx's, written again for tiberius.
//! `suite::mssql::tx` stamps them with [`mssql_tx_cases!`].
//!
//! Each subject has a records table and a business table of its own (fresh
//! names, so cases run in parallel without meeting each other's locks). The
//! handler's side effect is a row in the business table with no unique
//! constraint, so that a second run would show as a second row. Every
//! statement, the tests' own included, runs through the engine: the rows are
//! counted in a run that is then released.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use idem_core::{Completion, Fingerprint, Outcome, StoreKey, StoredResponse};
use idem_mssql::{IdempotentTx, Transactional};

use super::stale_tables;

/// A transactional engine and a business table.
pub(crate) struct MssqlTxSubject {
    pub(crate) engine: Transactional,
    /// A fresh table `(k VARCHAR(255))` for the handlers' rows.
    pub(crate) table: String,
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

impl MssqlTxSubject {
    /// Runs `sql` in a run of its own, committed.
    async fn exec(&self, sql: String) {
        let outcome = self
            .engine
            .execute(&key(), fp(), |mut tx| async move {
                tx.simple_query(sql)
                    .await
                    .unwrap()
                    .into_results()
                    .await
                    .unwrap();
                ((), Completion::Keep(paid()))
            })
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Executed(())), "{outcome:?}");
    }

    /// Creates the business table, after dropping the test tables that runs
    /// over an hour old left behind.
    pub(crate) async fn create_table(&self) {
        let listed = self
            .engine
            .execute(&key(), fp(), |mut tx| async move {
                let sql = "SELECT name FROM sys.tables WHERE name LIKE 'idem[_]t[_]%'";
                let rows = tx
                    .simple_query(sql)
                    .await
                    .unwrap()
                    .into_first_result()
                    .await
                    .unwrap();
                let names: Vec<String> = rows
                    .iter()
                    .filter_map(|row| row.get::<&str, _>(0).map(str::to_owned))
                    .collect();
                (names, Completion::Release)
            })
            .await
            .unwrap();
        let Outcome::Released(names) = listed else {
            panic!("{listed:?}");
        };
        for stale in stale_tables(names) {
            self.exec(format!("DROP TABLE IF EXISTS [{stale}]")).await;
        }
        self.exec(format!(
            "CREATE TABLE [{}] (k VARCHAR(255) NOT NULL)",
            self.table
        ))
        .await;
    }

    /// The rows the handlers wrote for `key`.
    async fn rows(&self, key: &StoreKey) -> i32 {
        let sql = format!("SELECT COUNT(*) FROM [{}] WHERE k = @P1", self.table);
        let k = key.as_str();
        let counted = self
            .engine
            .execute(&self::key(), fp(), |mut tx| async move {
                let row = tx
                    .query(sql, &[&k])
                    .await
                    .unwrap()
                    .into_row()
                    .await
                    .unwrap()
                    .expect("a count");
                (row.get::<i32, _>(0).unwrap(), Completion::Release)
            })
            .await
            .unwrap();
        match counted {
            Outcome::Released(n) => n,
            other => panic!("{other:?}"),
        }
    }

    /// The handler's side effect: one row for `key`, in its transaction.
    async fn write(&self, tx: &mut IdempotentTx, key: &StoreKey) {
        let sql = format!("INSERT INTO [{}] (k) VALUES (@P1)", self.table);
        tx.execute(sql, &[&key.as_str()]).await.unwrap();
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
        for completion in [Completion::Keep(paid()), Completion::Release] {
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
            assert_eq!(self.rows(&k).await, 1);
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

    /// SQL Server only: the claim locks its own key, not a range, so a run
    /// on another key is not held up by a transaction that runs long.
    pub(crate) async fn other_keys_do_not_wait(&self, wait: Duration) {
        let engine = self.engine.clone().with_lock_wait(wait);
        let runs = AtomicUsize::new(0);
        let (long, other) = (key(), key());
        let (first, second) = tokio::join!(
            self.run(&long, wait * 3, Completion::Keep(paid()), &runs),
            async {
                super::first_started(&runs).await;
                let started = Instant::now();
                let outcome = engine
                    .execute(&other, fp(), |_| async { ((), Completion::Keep(paid())) })
                    .await
                    .unwrap();
                (outcome, started.elapsed())
            }
        );
        assert!(matches!(first, Outcome::Executed(())), "{first:?}");
        let (outcome, took) = second;
        assert!(matches!(outcome, Outcome::Executed(())), "{outcome:?}");
        assert!(
            took < wait,
            "another key waited {took:?} on a running transaction"
        );
    }

    /// The connection goes away in the middle of the handler (the run is
    /// abandoned, as when the process dies: the client side closes it, and
    /// the server rolls the session's transaction back): nothing is left,
    /// and a retry runs once.
    pub(crate) async fn a_killed_connection_leaves_nothing(&self) {
        let k = key();
        let kr = &k;
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
        let split = MssqlTxSubject {
            engine: self.engine.clone().with_claim_committed_apart(),
            table: self.table.clone(),
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
/// (`async fn() -> Option<Arc<MssqlTxSubject>>`), with `$wait` the lock
/// wait of the in-flight cases.
macro_rules! mssql_tx_cases {
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
        async fn other_keys_do_not_wait() {
            if let Some(s) = $setup().await {
                s.other_keys_do_not_wait($wait).await;
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

pub(crate) use mssql_tx_cases;
