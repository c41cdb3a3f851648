//! sqlx errors as idem errors.

use std::future::Future;
use std::time::Duration;

use idem_core::{Error, Result};

/// Maps a sqlx error: connection trouble and lock timeouts are transient
/// ([`Error::Unavailable`]), bad configuration is [`Error::Config`], the rest
/// [`Error::Backend`]. The sqlx error is kept as the source.
pub(crate) fn map_err(backend: &'static str, error: sqlx::Error) -> Error {
    use sqlx::Error as E;
    match &error {
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed => Error::unavailable(backend, error),
        E::Configuration(_) => Error::Config {
            message: format!("invalid {backend} configuration"),
            source: Some(Box::new(error)),
        },
        E::Database(db) if is_transient_db_error(db.code().as_deref()) || is_busy_mysql(&**db) => {
            Error::unavailable(backend, error)
        }
        _ => Error::backend(backend, error),
    }
}

/// Runs `op` for at most `limit`; running out of time is
/// [`Error::Unavailable`].
pub(crate) async fn within<T>(
    backend: &'static str,
    limit: Duration,
    op: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, op)
        .await
        .map_err(|e| Error::unavailable(backend, e))?
}

/// Database error codes that mean "busy, try again": SQLite BUSY/LOCKED,
/// MySQL lock wait timeout and deadlock, PostgreSQL serialization failure,
/// deadlock, too many connections, admin shutdown and cannot-connect-now.
fn is_transient_db_error(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "5" | "6" | "1205" | "1213" | "1040" | "40001" | "40P01" | "53300" | "57P01" | "57P03"
        )
    )
}

/// MySQL's lock wait timeout (1205) and deadlock (1213), known by number:
/// the SQLSTATE of the first is the catch-all HY000.
#[cfg(feature = "mysql")]
pub(crate) fn is_busy_mysql(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        .is_some_and(|e| matches!(e.number(), 1205 | 1213))
}

#[cfg(not(feature = "mysql"))]
pub(crate) fn is_busy_mysql(_: &dyn sqlx::error::DatabaseError) -> bool {
    false
}

/// Whether `error` is a MySQL deadlock or lock wait timeout, which a single
/// statement may hit under heavy contention and which is safe to retry.
pub(crate) fn is_retryable_conflict(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("1213" | "40001")))
}
