//! The consumer's settings, as command-line options (or `IDEM_CONSUMER_*`
//! variables).

use std::path::PathBuf;
use std::time::Duration;

/// How to run the consumer.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "idem-consumer", version, about)]
pub struct Options {
    /// The NATS server.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The JetStream stream (created if missing).
    #[arg(long, default_value = "ORDERS")]
    pub stream: String,
    /// The subject the stream holds.
    #[arg(long, default_value = "orders")]
    pub subject: String,
    /// The durable pull consumer (created if missing); processes with the
    /// same name share its messages.
    #[arg(long, default_value = "ledger")]
    pub durable: String,
    /// The SQLite file of the ledger and of the idempotency records.
    #[arg(long, default_value = "idem-consumer.db")]
    pub database: PathBuf,
    /// How long the broker waits for an ack before it delivers again.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub ack_wait: Duration,
    /// Turns idempotency off (the ledger gets a row per delivery): shows
    /// what the check is for, and proves the tests can fail.
    #[arg(long, env = "IDEM_CONSUMER_NO_IDEMPOTENCY")]
    pub no_idempotency: bool,
    /// Injected faults, for the tests.
    #[command(flatten)]
    pub faults: Faults,
}

/// Faults a test injects, counted in deliveries to this process (1 is the
/// first). A stall prints `STALL key=... attempt=...` and waits forever, for
/// the test to kill the process there; it happens at the first delivery
/// from the Nth on that reaches its point (a replayed message never
/// reaches the handler).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Faults {
    /// Never ack every Nth delivery, as if the ack were lost: the broker
    /// delivers it again after the ack wait.
    #[arg(long, value_name = "N")]
    pub withhold_ack_every: Option<u64>,
    /// Stall from the Nth delivery on, after a row is written and before
    /// its transaction commits.
    #[arg(long, value_name = "N")]
    pub stall_in_handler_at: Option<u64>,
    /// Stall from the Nth delivery on, once one is processed (committed or
    /// replayed), before its ack.
    #[arg(long, value_name = "N")]
    pub stall_before_ack_at: Option<u64>,
}
