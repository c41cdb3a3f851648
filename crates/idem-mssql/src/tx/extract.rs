//! [`IdempotentTx`] as an axum extractor (feature `axum`).

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::StatusCode;
use http::request::Parts;

use super::{IdempotentTx, TxSlot};

/// What a handler gets when it asks for a transaction the layer did not
/// lend: a `500`, and the log says why. The handler does not run.
const NOT_COVERED: &str = "this route asks for an IdempotentTx, but no transactional idempotency \
    layer covers the request (a route without the layer, a method it does not cover, or a request \
    without a key on a route where the key is optional)";

/// The handler's transaction, behind the tower layer over
/// [`MssqlStore::transactional`](crate::MssqlStore::transactional): the
/// layer claimed the key in it, and commits it after the response is kept.
///
/// On a request the layer did not cover, extraction fails with `500` (and
/// an error in the log), so the handler never runs without a transaction.
///
/// # Examples
/// ```no_run
/// use axum::{Router, http::StatusCode, routing::post};
/// use idem_mssql::IdempotentTx;
///
/// async fn pay(mut tx: IdempotentTx) -> StatusCode {
///     match tx.execute("INSERT INTO payments (amount) VALUES (@P1)", &[&42i32]).await {
///         Ok(_) => StatusCode::CREATED,
///         // A 5xx is not kept: everything rolls back, the key included.
///         Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
///     }
/// }
///
/// # fn app(store: idem_mssql::MssqlStore) -> Router {
/// let layer = idem_tower::IdempotencyLayer::from_engine(store.transactional())
///     .with_key_required(true);
/// Router::new().route("/payments", post(pay)).route_layer(layer)
/// # }
/// ```
impl<S: Send + Sync> FromRequestParts<S> for IdempotentTx {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let lent = parts.extensions.get::<TxSlot>().and_then(TxSlot::lend);
        lent.ok_or_else(|| {
            tracing::error!(
                method = %parts.method,
                path = %parts.uri.path(),
                "{NOT_COVERED}; the handler did not run"
            );
            (StatusCode::INTERNAL_SERVER_ERROR, NOT_COVERED)
        })
    }
}

/// As `Option<IdempotentTx>`: the transaction when the transactional layer
/// covers the request, `None` otherwise (a handler shared by covered and
/// uncovered routes runs its statements elsewhere then). A transaction the
/// layer lent but another extractor already holds is still a `500`.
impl<S: Send + Sync> OptionalFromRequestParts<S> for IdempotentTx {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        let Some(slot) = parts.extensions.get::<TxSlot>() else {
            return Ok(None);
        };
        slot.lend().map(Some).ok_or_else(|| {
            tracing::error!("the transaction was already taken by another extractor");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request's IdempotentTx was taken twice",
            )
        })
    }
}
