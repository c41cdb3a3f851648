//! What can stop the consumer.

/// Why the consumer could not start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// Connecting to the NATS server failed.
    #[error("could not connect to NATS at {url}")]
    Connect {
        /// The server's URL.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A JetStream call (stream, consumer, pull, publish) failed.
    #[error("JetStream: {what}")]
    JetStream {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
    /// The ledger's database failed.
    #[error("the ledger database failed")]
    Database(#[from] idem_sql::sqlx::Error),
    /// The idempotency store failed to open.
    #[error("the idempotency store failed")]
    Store(#[from] idem_core::Error),
}

impl ConsumerError {
    pub(crate) fn js(what: &'static str, source: impl Into<async_nats::Error>) -> Self {
        Self::JetStream {
            what,
            source: source.into(),
        }
    }
}
