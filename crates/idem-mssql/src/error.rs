//! This backend's errors, and how they become `idem_core::Error`s.

use std::sync::Arc;
use std::time::Duration;

use idem_core::Error;

/// The name errors carry.
pub(crate) const BACKEND: &str = "mssql";

/// Why a connection could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ConnectError {
    /// TCP, TLS and login took longer than the connect timeout.
    #[error("connecting to {addr} took longer than {after:?}")]
    Timeout {
        /// `host:port`.
        addr: Arc<str>,
        /// The connect timeout.
        after: Duration,
    },
    /// The driver failed (refused, TLS, login failed, ...).
    #[error("connecting to {addr} failed")]
    Driver {
        /// `host:port`.
        addr: Arc<str>,
        /// The driver's error.
        #[source]
        source: Arc<bb8_tiberius::Error>,
    },
}

/// Why a store operation did not get a server answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OperationError {
    /// The whole operation outlived the operation timeout.
    #[error("the operation took longer than the operation timeout of {0:?}")]
    OperationTimeout(Duration),
    /// No pooled connection was free in time, and none could be made.
    #[error("no connection became available within {waited:?}")]
    PoolTimeout {
        waited: Duration,
        /// The last connect failure, if there was one.
        #[source]
        last: Option<ConnectError>,
    },
    /// A connection attempt failed while this operation waited for one.
    #[error("the server could not be reached")]
    Connect(#[source] ConnectError),
    /// The server answered something this store cannot read.
    #[error("unexpected reply: {0}")]
    Reply(&'static str),
}

/// Server error numbers worth retrying later: deadlock victim, lock timeout,
/// and Azure SQL's "busy / moving / throttled" family.
const TRANSIENT_SERVER_ERRORS: &[u32] = &[
    1205, 1222, 4060, 40143, 40197, 40501, 40613, 49918, 49919, 49920,
];

/// Maps a driver error from a query.
pub(crate) fn query_error(e: tiberius::error::Error) -> Error {
    use tiberius::error::Error as T;
    match &e {
        T::Io { .. } | T::Tls(_) | T::Protocol(_) | T::Routing { .. } => {
            Error::unavailable(BACKEND, e)
        }
        T::Server(token) if TRANSIENT_SERVER_ERRORS.contains(&token.code()) => {
            Error::unavailable(BACKEND, e)
        }
        _ => Error::backend(BACKEND, e),
    }
}

/// Whether a failed query may succeed if run again at once (this session
/// was chosen as a deadlock victim).
pub(crate) fn is_retryable(e: &tiberius::error::Error) -> bool {
    e.is_deadlock()
}

pub(crate) fn unavailable(e: OperationError) -> Error {
    Error::unavailable(BACKEND, e)
}
