//! Turning Redis and pool failures into [`idem_core::Error`].

use std::time::Duration;

use idem_core::Error;
use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The backend name in every error.
pub(crate) const BACKEND: &str = "redis";

/// Failures of idem-redis itself (the source of an [`Error::Unavailable`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisStoreError {
    /// The operation, waiting for a connection included, took too long.
    #[error("Redis did not answer within the operation timeout ({0:?})")]
    OperationTimeout(Duration),
    /// The pool failed for another reason.
    #[error("the Redis connection pool failed: {0}")]
    Pool(String),
}

/// Whether `error` says the server is down, slow, or moving (worth a retry
/// later, and a reason to drop the connection it came from).
pub(crate) fn is_transient(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_cluster_error()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(ServerErrorKind::BusyLoading)
                | ErrorKind::Server(ServerErrorKind::MasterDown)
                | ErrorKind::Server(ServerErrorKind::ReadOnly)
        )
}

/// Maps a Redis error: transient ones are [`Error::Unavailable`], the rest
/// [`Error::Backend`]. The Redis error stays the source.
pub(crate) fn from_redis(error: RedisError) -> Error {
    if is_transient(&error) {
        Error::unavailable(BACKEND, error)
    } else {
        Error::backend(BACKEND, error)
    }
}

/// Maps a failure to get a pooled connection.
pub(crate) fn from_pool(error: deadpool::managed::PoolError<RedisError>) -> Error {
    use deadpool::managed::PoolError;
    match error {
        PoolError::Backend(e) => from_redis(e),
        PoolError::Timeout(_) | PoolError::Closed => {
            Error::unavailable(BACKEND, RedisStoreError::Pool(error.to_string()))
        }
        other => Error::backend(BACKEND, RedisStoreError::Pool(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_transient_and_server_errors_are_not() {
        let io: RedisError =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused").into();
        assert!(from_redis(io).is_transient());
        let wrong_type: RedisError = (ErrorKind::UnexpectedReturnType, "wrong type").into();
        assert!(!from_redis(wrong_type).is_transient());
    }
}
