//! The JetStream side: the stream, the durable pull consumer, and
//! publishing a message with its idempotency key.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};

use crate::{ConsumerError, KEY_HEADER};

/// Connects to `url` and opens JetStream.
///
/// # Errors
/// [`ConsumerError::Connect`] when the server does not answer.
pub async fn connect(url: &str) -> Result<jetstream::Context, ConsumerError> {
    let client = async_nats::connect(url)
        .await
        .map_err(|source| ConsumerError::Connect {
            url: url.to_owned(),
            source,
        })?;
    Ok(jetstream::new(client))
}

/// The stream `name` over `subject`, created (file storage) if missing.
///
/// # Errors
/// The server refused.
pub async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    subject: &str,
) -> Result<stream::Stream, ConsumerError> {
    js.get_or_create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| ConsumerError::js("create the stream", e))
}

/// The durable pull consumer `durable` on `stream`, with explicit acks and
/// `ack_wait`, created if missing; it never gives up on a message.
///
/// # Errors
/// The server refused.
pub async fn ensure_consumer(
    stream: &stream::Stream,
    durable: &str,
    ack_wait: Duration,
) -> Result<consumer::PullConsumer, ConsumerError> {
    stream
        .get_or_create_consumer(
            durable,
            consumer::pull::Config {
                durable_name: Some(durable.to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait,
                max_deliver: -1,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| ConsumerError::js("create the consumer", e))
}

/// Publishes `payload` on `subject` with idempotency key `key`, and waits
/// for the stream to store it. Each publish gets a fresh `Nats-Msg-Id`, so
/// JetStream's de-duplication window never merges two publishes of one key:
/// a duplicate publish reaches the consumer, as it would from a producer
/// that retried after the window or through another path.
///
/// # Errors
/// The server refused or did not confirm.
pub async fn publish(
    js: &jetstream::Context,
    subject: &str,
    key: &str,
    payload: &serde_json::Value,
) -> Result<(), ConsumerError> {
    let mut headers = HeaderMap::new();
    headers.insert(KEY_HEADER, key);
    headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
    let body = serde_json::to_vec(payload).expect("a JSON value always serializes");
    js.publish_with_headers(subject.to_owned(), headers, body.into())
        .await
        .map_err(|e| ConsumerError::js("publish", e))?
        .await
        .map_err(|e| ConsumerError::js("confirm a publish", e))?;
    Ok(())
}
