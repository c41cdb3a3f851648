//! What the broker scenarios share: the server, the consumer processes, the
//! publisher and the counts.

pub(crate) mod server;
pub(crate) mod worker;

use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use idem_consumer::{broker, ledger};
use idem_sql::sqlx::SqlitePool;

pub(crate) use worker::{Log, Setup, Worker};

/// Publishes `keys` (each key's payload derived from it, so a duplicate
/// publish has the same payload) and returns how many were published.
pub(crate) async fn publish(
    js: &jetstream::Context,
    subject: &str,
    keys: impl Iterator<Item = usize>,
) -> usize {
    let mut published = 0;
    for i in keys {
        let payload = serde_json::json!({ "order": i, "cents": 100 + i });
        broker::publish(js, subject, &format!("order-{i}"), &payload)
            .await
            .expect("publish");
        published += 1;
    }
    published
}

/// Waits until the durable consumer has nothing pending or unacked, twice
/// in a row.
pub(crate) async fn drained(stream: &jetstream::stream::Stream) {
    let mut consumer = broker::ensure_consumer(stream, "ledger", Duration::from_secs(1))
        .await
        .expect("the consumer");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    while quiet < 2 {
        assert!(
            Instant::now() < deadline,
            "the stream was not drained in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let info = consumer.info().await.expect("consumer info");
        let idle = info.num_pending == 0 && info.num_ack_pending == 0;
        quiet = if idle { quiet + 1 } else { 0 };
    }
}

/// What a scenario did, as `cargo xtask broker` prints it.
#[derive(Debug)]
pub(crate) struct Counts {
    pub(crate) published: usize,
    pub(crate) delivered: usize,
    pub(crate) redelivered: usize,
    pub(crate) rows: i64,
    pub(crate) keys: i64,
}

impl Counts {
    /// Counts the deliveries in `log` and the rows in the ledger.
    pub(crate) async fn of(published: usize, log: &Log, database: &Path) -> Self {
        let lines = log.lock().unwrap().clone();
        let deliveries: Vec<_> = lines
            .iter()
            .filter(|l| l.starts_with("delivery "))
            .collect();
        let url = format!("sqlite://{}", database.display());
        let pool = SqlitePool::connect(&url).await.expect("open the ledger");
        let counts = Self {
            published,
            delivered: deliveries.len(),
            redelivered: deliveries
                .iter()
                .filter(|l| !l.contains(" attempt=1 "))
                .count(),
            rows: ledger::rows(&pool).await.expect("count rows"),
            keys: ledger::keys(&pool).await.expect("count keys"),
        };
        pool.close().await;
        counts
    }

    /// Prints the counts straight to the terminal (the test harness does
    /// not capture it), for `cargo xtask broker`.
    pub(crate) fn report(&self, scenario: &str, expected_rows: usize) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "BROKER scenario={scenario} published={} delivered={} redelivered={} rows={} expected_rows={expected_rows}",
            self.published,
            self.delivered,
            self.redelivered,
            self.rows
        );
    }
}

/// The outcomes reported for `key` after its stall line, in order.
pub(crate) fn outcomes_after(log: &Log, stall: &str) -> Vec<String> {
    let key = stall
        .split(' ')
        .find(|kv| kv.starts_with("key="))
        .expect("a key");
    let lines = log.lock().unwrap().clone();
    let at = lines
        .iter()
        .position(|l| l == stall)
        .expect("the stall is logged");
    lines[at + 1..]
        .iter()
        .filter(|l| l.starts_with("delivery ") && l.split(' ').any(|kv| kv == key))
        .filter_map(|l| l.split(' ').find_map(|kv| kv.strip_prefix("outcome=")))
        .map(str::to_owned)
        .collect()
}
