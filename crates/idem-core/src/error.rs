//! The one error type every store and the protocol engine return.

use std::error::Error as StdError;

use crate::key::KeyError;

/// A boxed error from a backend, kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong in a store or in the protocol engine.
///
/// The variants are semantic, so callers can branch on them (an HTTP layer turns
/// [`Error::InvalidKey`] into `400` and [`Error::Unavailable`] into `503`); the
/// backend's own error is kept as the [`source`](StdError::source), never
/// flattened into a string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The idempotency key or the scope was rejected before reaching the store.
    #[error("invalid idempotency key: {0}")]
    InvalidKey(#[from] KeyError),

    /// The caller no longer holds the lease: it expired and the key was claimed
    /// again, or the record was removed. The caller's result was not written.
    #[error("the lease on this key was lost; the result was not stored")]
    LeaseLost,

    /// The bytes in the store are not a record this version of idem can read.
    #[error("stored record is corrupt or of an unknown version: {reason}")]
    CorruptRecord {
        /// What was wrong with the bytes.
        reason: String,
        /// The decoder's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The store could not be reached, or did not answer in time. Transient.
    #[error("{backend} store is unavailable")]
    Unavailable {
        /// The backend's name (`"redis"`, `"postgres"`, ...).
        backend: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },

    /// The store was reached but the operation failed (a constraint, a bad
    /// statement, an unexpected reply).
    #[error("{backend} store failed")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },

    /// The store cannot do this: an optional ability it lacks, such as
    /// counting its records ([`IdempotencyStore::stats`](crate::IdempotencyStore::stats)).
    #[error("{operation} is not supported by the {backend} store")]
    Unsupported {
        /// The store's name (`"redis"`, `"MssqlStore"`, ...).
        backend: &'static str,
        /// What was asked (`"stats"`, ...).
        operation: &'static str,
    },

    /// The store or the engine was configured wrongly (bad URL, bad table name,
    /// feature not compiled in).
    #[error("configuration error: {message}")]
    Config {
        /// What is wrong, in words a user can act on. Never contains a password.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// Builds an [`Error::Unavailable`] from a backend error.
    pub fn unavailable(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            backend,
            source: source.into(),
        }
    }

    /// Builds an [`Error::Backend`] from a backend error.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            source: source.into(),
        }
    }

    /// Builds an [`Error::Config`] with a message and no source.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
            source: None,
        }
    }

    /// Builds an [`Error::Unsupported`].
    pub fn unsupported(backend: &'static str, operation: &'static str) -> Self {
        Self::Unsupported { backend, operation }
    }

    /// Builds an [`Error::CorruptRecord`].
    pub fn corrupt(reason: impl Into<String>, source: Option<BoxError>) -> Self {
        Self::CorruptRecord {
            reason: reason.into(),
            source,
        }
    }

    /// Whether retrying the same call later may succeed (the store was down or
    /// slow). A lost lease, a bad key or a corrupt record is not transient.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A `Result` with idem's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
