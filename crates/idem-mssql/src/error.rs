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

/// Server error 1205: this session was chosen as a deadlock victim (its
/// transaction was rolled back).
pub(crate) const DEADLOCK_VICTIM: u32 = 1205;

/// Server error 1222: a lock was not granted within `SET LOCK_TIMEOUT`.
pub(crate) const LOCK_TIMEOUT: u32 = 1222;

/// Server error numbers worth retrying later: deadlock victim, lock timeout,
/// and Azure SQL's "busy / moving / throttled" family.
const TRANSIENT_SERVER_ERRORS: &[u32] = &[
    DEADLOCK_VICTIM,
    LOCK_TIMEOUT,
    4060,
    40143,
    40197,
    40501,
    40613,
    49918,
    49919,
    49920,
];

/// Whether a server error number is worth retrying later.
fn is_transient(code: u32) -> bool {
    TRANSIENT_SERVER_ERRORS.contains(&code)
}

/// Maps a driver error from a query.
pub(crate) fn query_error(e: tiberius::error::Error) -> Error {
    use tiberius::error::Error as T;
    match &e {
        T::Io { .. } | T::Tls(_) | T::Protocol(_) | T::Routing { .. } => {
            Error::unavailable(BACKEND, e)
        }
        T::Server(token) if is_transient(token.code()) => Error::unavailable(BACKEND, e),
        _ => Error::backend(BACKEND, e),
    }
}

/// Why the transactional mode's claim did not get its key, by the server's
/// error number (`None`: not a server error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimFailure {
    /// Another transaction held the key past the lock wait: it is in flight.
    LockTimeout,
    /// The server rolled this transaction back to end a deadlock: nothing
    /// was written, and the claim may run again in a new transaction.
    Deadlock,
    /// Anything else: an error.
    Other,
}

impl ClaimFailure {
    pub(crate) fn of(code: Option<u32>) -> Self {
        match code {
            Some(LOCK_TIMEOUT) => Self::LockTimeout,
            Some(DEADLOCK_VICTIM) => Self::Deadlock,
            _ => Self::Other,
        }
    }
}

/// Whether a failed query may succeed if run again at once (this session
/// was chosen as a deadlock victim).
pub(crate) fn is_retryable(e: &tiberius::error::Error) -> bool {
    e.code() == Some(DEADLOCK_VICTIM)
}

pub(crate) fn unavailable(e: OperationError) -> Error {
    Error::unavailable(BACKEND, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeout_and_deadlock_are_transient_and_tell_the_claim_apart() {
        assert!(is_transient(LOCK_TIMEOUT) && is_transient(DEADLOCK_VICTIM));
        assert!(!is_transient(2627), "a duplicate key is not transient");
        assert_eq!(ClaimFailure::of(Some(1222)), ClaimFailure::LockTimeout);
        assert_eq!(ClaimFailure::of(Some(1205)), ClaimFailure::Deadlock);
        for other in [None, Some(0), Some(2627), Some(3902), Some(40501)] {
            assert_eq!(ClaimFailure::of(other), ClaimFailure::Other, "{other:?}");
        }
    }

    #[test]
    fn broken_connections_are_unavailable_and_keep_their_source() {
        let io = tiberius::error::Error::Io {
            kind: std::io::ErrorKind::ConnectionReset,
            message: "reset by peer".into(),
        };
        let e = query_error(io);
        assert!(
            matches!(
                e,
                Error::Unavailable {
                    backend: BACKEND,
                    ..
                }
            ),
            "{e:?}"
        );
        let source = std::error::Error::source(&e).expect("the driver's error is kept");
        assert!(source.to_string().contains("reset by peer"), "{source}");
        let conversion = query_error(tiberius::error::Error::Conversion("bad".into()));
        assert!(
            matches!(conversion, Error::Backend { .. }),
            "{conversion:?}"
        );
        assert!(!conversion.is_transient());
    }
}
