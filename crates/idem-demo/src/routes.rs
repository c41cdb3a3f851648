//! The HTTP handlers of the payments API.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use crate::db::{Created, Payments, Tx};
use crate::payment::{InputError, NewPayment, Payment};
use crate::problem::Problem;

/// The header that names the account (the idempotency scope). Optional.
pub const ACCOUNT_HEADER: &str = "x-account";
/// The account of requests that name none.
pub const DEFAULT_ACCOUNT: &str = "demo";

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The payments table.
    pub payments: Payments,
    /// Simulated processing time of a payment.
    pub processing_delay: Duration,
}

/// The account a request acts for: the `X-Account` header (1 to 64 letters,
/// digits, `-`, `_`, `.`, `@`), or [`DEFAULT_ACCOUNT`].
pub fn account(headers: &HeaderMap) -> Result<String, Problem> {
    let Some(value) = headers.get(ACCOUNT_HEADER) else {
        return Ok(DEFAULT_ACCOUNT.to_owned());
    };
    match value.to_str() {
        Ok(s)
            if (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b)) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-account",
            "The X-Account header is invalid",
            "`X-Account` must be 1 to 64 letters, digits, `-`, `_`, `.` or `@`",
        )),
    }
}

/// The idempotency key as the layer read it: bare, or a structured-field
/// string in double quotes.
fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("idempotency-key")?.to_str().ok()?.trim();
    let key = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => raw.to_owned(),
    };
    (!key.is_empty()).then_some(key)
}

/// `POST /payments`.
///
/// In the transactional mode the payment is written through the request's
/// transaction (`tx`), which commits with its idempotency record.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    tx: Option<Tx>,
    body: Bytes,
) -> Response {
    let Some(key) = idempotency_key(&headers) else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "missing-key",
            "An Idempotency-Key is required",
            "send `Idempotency-Key: <a new UUID>` with every payment",
        )
        .into_response();
    };
    let scope = match account(&headers) {
        Ok(scope) => scope,
        Err(problem) => return problem.into_response(),
    };
    let new = match NewPayment::parse(&body) {
        Ok(new) => new,
        Err(InputError::Malformed(detail)) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "The body is not a JSON object",
                detail,
            )
            .into_response();
        }
        Err(InputError::Invalid(errors)) => return Problem::invalid_fields(errors).into_response(),
    };
    if !state.processing_delay.is_zero() {
        tokio::time::sleep(state.processing_delay).await;
    }
    let made = match tx {
        Some(mut tx) => Payments::create_in(&mut tx, &scope, &key, &new).await,
        None => state.payments.create(&scope, &key, &new).await,
    };
    match made {
        Ok(Created::New(payment)) => created(StatusCode::CREATED, payment),
        Ok(Created::Existing(payment)) if same(&payment, &new) => created(StatusCode::OK, payment),
        Ok(Created::Existing(payment)) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "key-reused",
            "This Idempotency-Key was used for another payment",
            format!("payment {} was made with this key", payment.id),
        )
        .into_response(),
        Err(error) => database_error(&error),
    }
}

fn same(payment: &Payment, new: &NewPayment) -> bool {
    payment.amount == new.amount
        && payment.currency == new.currency
        && payment.recipient == new.recipient
}

fn created(status: StatusCode, payment: Payment) -> Response {
    let location = format!("/payments/{}", payment.id);
    (status, [(header::LOCATION, location)], Json(payment)).into_response()
}

/// `GET /payments/{id}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let scope = match account(&headers) {
        Ok(scope) => scope,
        Err(problem) => return problem.into_response(),
    };
    match state.payments.get(&scope, &id).await {
        Ok(Some(payment)) => Json(payment).into_response(),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            "payment-not-found",
            "No such payment",
            format!("there is no payment {id} in this account"),
        )
        .into_response(),
        Err(error) => database_error(&error),
    }
}

/// `GET /payments`: the account's payments, oldest first.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let scope = match account(&headers) {
        Ok(scope) => scope,
        Err(problem) => return problem.into_response(),
    };
    match state.payments.list(&scope).await {
        Ok(payments) => Json(payments).into_response(),
        Err(error) => database_error(&error),
    }
}

/// `GET /healthz`: whether the payments database answers.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.payments.ping().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(error) => {
            tracing::error!(%error, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// Any other path.
pub async fn not_found() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "No such route",
        "routes: GET / (the checkout page), POST /payments, GET /payments, GET /payments/{id}, GET /healthz",
    )
    .into_response()
}

fn database_error(error: &sqlx::Error) -> Response {
    tracing::error!(%error, "database error");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "database-error",
        "The payments database failed",
        "try again with the same Idempotency-Key",
    )
    .into_response()
}
