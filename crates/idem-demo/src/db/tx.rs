//! [`Tx`]: the request's transaction in the transactional mode, on whichever
//! database the payments are in, as an axum extractor.

use axum::extract::OptionalFromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use idem_sql::IdempotentTx;

/// The transaction the transactional layer lent a request: its payment is
/// written through it and commits with the idempotency record. As
/// `Option<Tx>` in a handler, `None` in the lease mode.
#[derive(Debug)]
#[non_exhaustive]
pub enum Tx {
    /// In a SQLite file.
    Sqlite(IdempotentTx<sqlx::Sqlite>),
    /// On PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(IdempotentTx<sqlx::Postgres>),
    /// On MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    MySql(IdempotentTx<sqlx::MySql>),
}

/// Takes the transaction of whichever database the layer lent; `None` when
/// no transactional layer covers the request. A transaction already taken
/// is `500`, as with [`IdempotentTx`] itself.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Tx {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        /// The transaction on `$db`, if the layer lent one: as `$variant`.
        macro_rules! lent {
            ($db:ty, $variant:ident) => {
                let tx = <IdempotentTx<$db> as OptionalFromRequestParts<S>>::from_request_parts(
                    parts, state,
                )
                .await?;
                if let Some(tx) = tx {
                    return Ok(Some(Self::$variant(tx)));
                }
            };
        }
        lent!(sqlx::Sqlite, Sqlite);
        #[cfg(feature = "postgres")]
        lent!(sqlx::Postgres, Postgres);
        #[cfg(feature = "mysql")]
        lent!(sqlx::MySql, MySql);
        Ok(None)
    }
}
