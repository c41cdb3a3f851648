//! What a [`Call`](super::Call) gives back: a value, from this run or an
//! earlier one, or a typed error.

use std::time::Duration;

use crate::BoxError;

/// A call's value, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Called<T> {
    /// The handler ran now and its value was kept: a retry replays it.
    Executed(T),
    /// An earlier run's value, read back from the store; the handler did
    /// not run.
    Replayed(T),
    /// The handler ran now, but its value could not be kept (the lease was
    /// lost, the store stayed down, or the value could not be encoded); it
    /// is logged as `completion_lost`, and a retry may run the handler again.
    Lost(T),
}

impl<T> Called<T> {
    /// The value, wherever it came from.
    pub fn into_value(self) -> T {
        match self {
            Self::Executed(value) | Self::Replayed(value) | Self::Lost(value) => value,
        }
    }

    /// The value, borrowed.
    pub fn value(&self) -> &T {
        match self {
            Self::Executed(value) | Self::Replayed(value) | Self::Lost(value) => value,
        }
    }

    /// Whether the value was replayed (the handler did not run now).
    pub fn was_replayed(&self) -> bool {
        matches!(self, Self::Replayed(_))
    }
}

/// Why a call gave no value. `E` is the handler's own error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError<E> {
    /// The handler ran now and failed. The error policy decided whether
    /// the error was kept (a retry gets it back as
    /// [`Replayed`](Self::Replayed)) or the key released (a retry runs
    /// again).
    #[error("the handler failed")]
    Handler(#[source] E),

    /// An earlier run failed with this error and it was kept; the handler
    /// did not run now.
    #[error("an earlier run failed with an error that was kept")]
    Replayed(#[source] E),

    /// Another run with the same key and input is still going.
    #[error("another run with this key is in flight; retry after {retry_after:?}")]
    InFlight {
        /// When it is worth trying again.
        retry_after: Duration,
    },

    /// The key was used with another input.
    #[error("the key was used with another input")]
    Mismatch,

    /// The input could not be serialized for its fingerprint; nothing ran.
    #[error("the input could not be serialized for its fingerprint")]
    Input(#[source] serde_json::Error),

    /// The key holds a record this call cannot read back as its value or
    /// error: written by an HTTP layer, by a call of another type, or kept
    /// under an error policy this call does not have. Nothing ran.
    #[error("the stored result cannot be read by this call: {reason}")]
    Decode {
        /// What did not fit.
        reason: &'static str,
        /// The decoder's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The store failed ([`Error::Unavailable`](crate::Error::Unavailable)
    /// when it is down); the handler did not run.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl<E> CallError<E> {
    /// The handler's error, from this run or a kept one, if that is what
    /// this is.
    pub fn into_handler_error(self) -> Option<E> {
        match self {
            Self::Handler(error) | Self::Replayed(error) => Some(error),
            _ => None,
        }
    }

    /// When a retry is worth it: for an in-flight key, its hint; for a store
    /// that is down, [`DEFAULT_RETRY_HINT`](crate::DEFAULT_RETRY_HINT);
    /// otherwise `None` (a retry would get the same answer, or the
    /// handler's error is the caller's to judge).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::InFlight { retry_after } => Some(*retry_after),
            Self::Store(error) if error.is_transient() => Some(crate::DEFAULT_RETRY_HINT),
            _ => None,
        }
    }
}
