//! [`Traced`]: an [`Outcome`] with the id of the request that first used
//! the key, so that a duplicate's answer and logs can name it.

use std::time::Duration;

use crate::{Fingerprint, Outcome, Record, RecordState, Result};

/// What an engine did ([`Outcome`]), and, when the key was already taken,
/// the id of the request that took it ([`Record::request_id`]).
///
/// Returned by [`Idempotency::execute_traced`](crate::Idempotency::execute_traced)
/// and [`Engine::run_traced`](crate::Engine::run_traced); the tower layer
/// puts the id in its `409` answer and logs it with a replay.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_core::{Fingerprint, Outcome, Record, Traced};
///
/// let fp = Fingerprint::of_request("POST", "/pay", b"{}");
/// let running = Record::in_progress(fp, Duration::from_secs(10)).with_request_id(Some("req-1"));
/// let met = Traced::<()>::of_record(&running.encode(), fp, Duration::from_secs(1))?;
/// assert!(matches!(met.outcome, Outcome::InFlight { .. }));
/// assert_eq!(met.original_request_id.as_deref(), Some("req-1"));
/// # Ok::<(), idem_core::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Traced<T> {
    /// What the engine did.
    pub outcome: Outcome<T>,
    /// The id kept by the request that holds or held the key, when this
    /// request met its record (in flight, replayed, mismatch) and that
    /// request gave one; `None` when this request ran the handler.
    pub original_request_id: Option<String>,
}

impl<T> Traced<T> {
    /// An outcome with no original request to name: this request ran the
    /// handler, or the engine keeps no ids.
    pub fn ran(outcome: Outcome<T>) -> Self {
        Self {
            outcome,
            original_request_id: None,
        }
    }

    /// What a live record that a claim met means for a request with
    /// `fingerprint` (as [`Outcome::of_record`]), with the id the record
    /// keeps. A replay and an in-flight answer are logged (`info`, in the
    /// current span) with that `original_request_id`.
    ///
    /// # Errors
    /// [`Error::CorruptRecord`](crate::Error::CorruptRecord) when the bytes
    /// are not a record.
    pub fn of_record(
        bytes: &bytes::Bytes,
        fingerprint: Fingerprint,
        retry_hint: Duration,
    ) -> Result<Self> {
        let record = Record::decode(bytes)?;
        let original_request_id = record.request_id;
        let id = original_request_id.as_deref();
        let outcome = if record.fingerprint != fingerprint {
            tracing::debug!(
                original_request_id = id,
                "idempotency: the key was used with another request"
            );
            Outcome::Mismatch
        } else {
            match record.state {
                RecordState::InProgress { lease } => {
                    tracing::info!(
                        original_request_id = id,
                        "idempotency: the request with this key is still running"
                    );
                    let elapsed = record.created_at.elapsed().unwrap_or_default();
                    let left = lease.saturating_sub(elapsed);
                    Outcome::InFlight {
                        retry_after: left.min(retry_hint).max(Duration::from_secs(1)),
                    }
                }
                RecordState::Completed(response) => {
                    tracing::info!(
                        original_request_id = id,
                        "idempotency: replaying the response of the request with this key"
                    );
                    Outcome::Replayed(response)
                }
                RecordState::CompletedNotRetained { status } => {
                    tracing::info!(
                        original_request_id = id,
                        status,
                        "idempotency: the request with this key completed; its response was not retained"
                    );
                    Outcome::ReplayedNotRetained { status }
                }
            }
        };
        Ok(Self {
            outcome,
            original_request_id,
        })
    }
}
