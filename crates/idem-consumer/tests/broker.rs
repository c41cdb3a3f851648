//! The consumer against a real nats-server: N messages plus duplicate
//! publishes, redeliveries forced by withheld acks and by consumers killed
//! (SIGKILL) mid-message, and exactly N ledger rows at the end, with one
//! consumer at a time or two competing. With idempotency off, the same
//! faults must leave more than N rows: the check can fail.

mod support;

use idem_consumer::broker;
use support::{Counts, Setup, Worker, publish, server};

/// Distinct messages (keys) per scenario.
const N: usize = 40;

/// One scenario's stream, subject and database, fresh.
struct Scenario {
    stream: String,
    subject: String,
    database: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Scenario {
    fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = tempfile::tempdir().expect("a temporary directory");
        Self {
            stream: format!("ORDERS_{}", &id[..12]),
            subject: format!("orders.{}", &id[..12]),
            database: dir.path().join("ledger.db"),
            _dir: dir,
        }
    }

    fn setup<'a>(&'a self, url: &'a str, idempotent: bool, log: &support::Log) -> Setup<'a> {
        Setup {
            url,
            stream: &self.stream,
            subject: &self.subject,
            database: &self.database,
            idempotent,
            log: log.clone(),
        }
    }
}

/// One consumer at a time: the first is killed after a commit and before
/// its ack, the second inside its transaction, the third drains the rest;
/// acks are withheld along the way and duplicates published in between.
async fn one_at_a_time(url: &str, idempotent: bool) -> Counts {
    let (counts, _, _) = one_at_a_time_logged(url, idempotent).await;
    counts
}

/// [`one_at_a_time`], with the log and the two stall lines (after a
/// commit, inside a transaction).
async fn one_at_a_time_logged(url: &str, idempotent: bool) -> (Counts, support::Log, [String; 2]) {
    let scenario = Scenario::new();
    let log = support::Log::default();
    let setup = scenario.setup(url, idempotent, &log);
    let js = broker::connect(url).await.unwrap();
    let stream = broker::ensure_stream(&js, &scenario.stream, &scenario.subject)
        .await
        .unwrap();
    let mut published = publish(&js, &scenario.subject, (0..N).chain((0..N).step_by(4))).await;

    let first = Worker::start(
        &setup,
        &["--withhold-ack-every", "3", "--stall-before-ack-at", "6"],
    )
    .await;
    let after_commit = first.kill_at_stall().await;
    // Duplicates of messages that are done by now, or still in flight.
    published += publish(&js, &scenario.subject, (0..N).step_by(3)).await;
    let second = Worker::start(&setup, &["--stall-in-handler-at", "5"]).await;
    let in_tx = second.kill_at_stall().await;
    let third = Worker::start(&setup, &["--withhold-ack-every", "4"]).await;
    support::drained(&stream).await;
    third.kill().await;
    let counts = Counts::of(published, &log, setup.database).await;
    (counts, log, [after_commit, in_tx])
}

/// Two consumer processes pull from one durable consumer; one is killed
/// after a commit and before its ack, and restarted.
async fn competing(url: &str) -> Counts {
    let scenario = Scenario::new();
    let log = support::Log::default();
    let setup = scenario.setup(url, true, &log);
    let js = broker::connect(url).await.unwrap();
    let stream = broker::ensure_stream(&js, &scenario.stream, &scenario.subject)
        .await
        .unwrap();
    let mut published = publish(&js, &scenario.subject, (0..N).chain((0..N).step_by(4))).await;
    // A pulls first, so that it surely gets its third delivery.
    let a = Worker::start(
        &setup,
        &["--withhold-ack-every", "3", "--stall-before-ack-at", "3"],
    )
    .await;
    let b = Worker::start(&setup, &["--withhold-ack-every", "5"]).await;
    a.kill_at_stall().await;
    published += publish(&js, &scenario.subject, (1..N).step_by(3)).await;
    let a = Worker::start(&setup, &["--withhold-ack-every", "4"]).await;
    support::drained(&stream).await;
    tokio::join!(a.kill(), b.kill());
    let counts = Counts::of(published, &log, setup.database).await;
    let pids: std::collections::HashSet<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("ready"))
        .cloned()
        .collect();
    assert_eq!(pids.len(), 3, "three consumer processes ran");
    counts
}

fn check(scenario: &str, counts: &Counts) {
    counts.report(scenario, N);
    assert!(
        counts.redelivered > 0,
        "no redelivery was forced: {counts:?}"
    );
    assert!(
        counts.published > N,
        "no duplicate was published: {counts:?}"
    );
    assert_eq!(
        counts.keys, N as i64,
        "every message must have its row: {counts:?}"
    );
    assert_eq!(
        counts.rows, N as i64,
        "exactly one row per message: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consumer_at_a_time_writes_each_message_once() {
    let Some(nats) = server::nats() else { return };
    let (counts, log, [after_commit, in_tx]) = one_at_a_time_logged(&nats.url, true).await;
    check("one-at-a-time", &counts);
    // The message whose consumer died between commit and ack came back and
    // was replayed, never run again; the one whose consumer died inside its
    // transaction came back and ran (its first row had rolled back).
    let replays = support::outcomes_after(&log, &after_commit);
    assert!(
        replays.iter().any(|o| o == "replayed") && !replays.iter().any(|o| o == "executed"),
        "{after_commit}: then {replays:?}"
    );
    let reruns = support::outcomes_after(&log, &in_tx);
    assert!(
        reruns.iter().any(|o| o == "executed"),
        "{in_tx}: then {reruns:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_competing_consumers_write_each_message_once() {
    let Some(nats) = server::nats() else { return };
    let counts = competing(&nats.url).await;
    check("competing", &counts);
}

/// The proof that the check can fail: with idempotency off, the same
/// faults leave duplicate rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idempotency_the_duplicates_show() {
    let Some(nats) = server::nats() else { return };
    let counts = one_at_a_time(&nats.url, false).await;
    counts.report("no-idempotency", N);
    assert_eq!(
        counts.keys, N as i64,
        "every message must have a row: {counts:?}"
    );
    assert!(
        counts.rows > N as i64,
        "with idempotency off, redeliveries and duplicates must add rows: {counts:?}"
    );
}
