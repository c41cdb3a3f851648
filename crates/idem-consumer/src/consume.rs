//! The consumer: pulls messages, processes each at most once per key (the
//! ledger row and the idempotency record commit in one SQLite
//! transaction), and acks.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use idem_core::{CallError, CallExt, Called, IdempotencyKey, KeySpace, Scope, StoreKey};
use idem_sql::sqlx::Sqlite;
use idem_sql::{SqliteConfig, SqliteStore, Transactional, TxSlot};

use crate::{ConsumerError, KEY_HEADER, Options, broker, ledger};

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Processed now: its row committed with its idempotency record.
    Executed,
    /// Processed before (a redelivery or a duplicate publish): no row.
    Replayed,
    /// Processed now, but its record could not be kept.
    Lost,
    /// Another consumer holds the key right now: asked to come back later.
    InFlight,
    /// The key came with another payload: terminated, no row.
    Mismatch,
    /// The handler or the store failed: nothing kept, delivered again.
    Failed,
    /// Idempotency off: a row written, whatever came before.
    Inserted,
    /// No key header, or a payload that is not JSON: terminated.
    Unreadable,
}

impl Handled {
    /// Whether the message is acked (done with) after this.
    fn acks(self) -> bool {
        !matches!(self, Self::InFlight | Self::Failed)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Executed => "executed",
            Self::Replayed => "replayed",
            Self::Lost => "lost",
            Self::InFlight => "in-flight",
            Self::Mismatch => "mismatch",
            Self::Failed => "failed",
            Self::Inserted => "inserted",
            Self::Unreadable => "unreadable",
        }
    }
}

/// One delivery, as the consumer reports it on its standard output (one
/// line each, which the tests count).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message's idempotency key (empty when it had none).
    pub key: String,
    /// The broker's delivery count for the message (1 on the first).
    pub attempt: i64,
    /// What became of it.
    pub handled: Handled,
    /// Whether it was acked (or terminated), rather than left to redeliver.
    pub acked: bool,
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "delivery key={} attempt={} outcome={} acked={}",
            self.key,
            self.attempt,
            self.handled.name(),
            self.acked
        )
    }
}

/// An idempotent JetStream consumer writing to a SQLite ledger.
#[derive(Debug)]
pub struct Consumer {
    options: Options,
    store: SqliteStore,
    engine: Transactional<Sqlite>,
    scope: Scope,
    deliveries: u64,
}

impl Consumer {
    /// Opens the database (the idempotency table and the ledger).
    ///
    /// # Errors
    /// The database could not be opened.
    pub async fn open(options: Options) -> Result<Self, ConsumerError> {
        let config = SqliteConfig::file(&options.database).with_max_connections(4);
        let store = SqliteStore::connect(config).await?;
        ledger::create(store.pool()).await?;
        let engine = store.transactional().with_lock_wait(Duration::from_secs(2));
        // Keys are scoped by stream: two streams may reuse a key.
        let scope = Scope::new(options.stream.as_str()).map_err(idem_core::Error::from)?;
        Ok(Self {
            options,
            store,
            engine,
            scope,
            deliveries: 0,
        })
    }

    /// Pulls and processes messages until the connection ends, printing
    /// a line per delivery (see [`Delivery`]).
    ///
    /// # Errors
    /// The broker could not be reached or refused the stream or consumer.
    pub async fn run(mut self) -> Result<(), ConsumerError> {
        let js = broker::connect(&self.options.nats_url).await?;
        let stream =
            broker::ensure_stream(&js, &self.options.stream, &self.options.subject).await?;
        let consumer =
            broker::ensure_consumer(&stream, &self.options.durable, self.options.ack_wait).await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(4)
            .messages()
            .await
            .map_err(|e| ConsumerError::js("pull messages", e))?;
        println!("ready pid={}", std::process::id());
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| ConsumerError::js("receive a message", e))?;
            let delivery = self.handle(message).await;
            println!("{delivery}");
        }
        Ok(())
    }

    /// Processes one message and acks it (or not).
    async fn handle(&mut self, message: jetstream::Message) -> Delivery {
        self.deliveries += 1;
        let nth = self.deliveries;
        let attempt = message.info().map(|i| i.delivered).unwrap_or(0);
        let key = message
            .headers
            .as_ref()
            .and_then(|h| h.get(KEY_HEADER))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let payload = serde_json::from_slice::<serde_json::Value>(&message.payload);
        let handled = match (IdempotencyKey::new(key.as_str()), payload) {
            (Ok(id), Ok(payload)) => {
                let store_key = KeySpace::default().key(&self.scope, &id);
                self.process(nth, attempt, &store_key, &key, &payload).await
            }
            _ => Handled::Unreadable,
        };
        let faults = &self.options.faults;
        if handled.acks() && faults.stall_before_ack_at.is_some_and(|n| nth >= n) {
            stall(&key, attempt).await;
        }
        let withheld = faults
            .withhold_ack_every
            .is_some_and(|n| n > 0 && nth % n == 0);
        let ack = match handled {
            Handled::InFlight | Handled::Failed => Some(AckKind::Nak(Some(Duration::from_secs(1)))),
            Handled::Mismatch | Handled::Unreadable => Some(AckKind::Term),
            _ if withheld => None,
            _ => Some(AckKind::Ack),
        };
        let mut acked = false;
        if let Some(kind) = ack {
            match message.ack_with(kind).await {
                Ok(()) => acked = handled.acks(),
                Err(error) => tracing::warn!(%key, %error, "the ack was not sent"),
            }
        }
        Delivery {
            key,
            attempt,
            handled,
            acked,
        }
    }

    /// The side effect, at most once per key (or once per delivery, with
    /// idempotency off).
    async fn process(
        &self,
        nth: u64,
        attempt: i64,
        store_key: &StoreKey,
        key: &str,
        payload: &serde_json::Value,
    ) -> Handled {
        let stall_at = self.options.faults.stall_in_handler_at;
        let stall_here = stall_at.is_some_and(|n| nth >= n);
        if self.options.no_idempotency {
            let Ok(mut conn) = self.store.pool().acquire().await else {
                return Handled::Failed;
            };
            if ledger::insert(&mut conn, key, payload).await.is_err() {
                return Handled::Failed;
            }
            if stall_here {
                stall(key, attempt).await;
            }
            return Handled::Inserted;
        }
        let called = self
            .engine
            .call(store_key, payload)
            .run(|slot: TxSlot<Sqlite>| async move {
                let mut tx = slot.lend().expect("the slot holds the transaction");
                let row = ledger::insert(&mut tx, key, payload).await?;
                if stall_here {
                    stall(key, attempt).await;
                }
                Ok::<_, idem_sql::sqlx::Error>(row)
            })
            .await;
        match called {
            Ok(Called::Executed(_)) => Handled::Executed,
            Ok(Called::Replayed(_)) => Handled::Replayed,
            Ok(Called::Lost(_)) => Handled::Lost,
            Err(CallError::InFlight { .. }) => Handled::InFlight,
            Err(CallError::Mismatch) => Handled::Mismatch,
            Err(error) => {
                tracing::warn!(%key, %error, "the message was not processed");
                Handled::Failed
            }
        }
    }
}

/// Announces a stall and waits forever, for a test to kill the process.
async fn stall(key: &str, attempt: i64) {
    println!("STALL key={key} attempt={attempt}");
    std::future::pending::<()>().await;
}
