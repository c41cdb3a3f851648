//! Turning a handler's response into what is kept, and what is kept back into
//! a response.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, response::Parts};
use idem_core::StoredResponse;

use crate::config::Config;

/// The header added to every replayed answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The part of a response that is kept: status, allow-listed headers, body.
pub(crate) fn to_stored(config: &Config, parts: &Parts, body: Bytes) -> StoredResponse {
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| config.is_replayed(name))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Bytes::copy_from_slice(value.as_bytes()),
            )
        })
        .collect();
    StoredResponse {
        status: parts.status.as_u16(),
        headers,
        body,
    }
}

/// The replay of a kept response, with `Idempotent-Replayed: true`.
pub(crate) fn from_stored<B: From<Bytes>>(stored: StoredResponse) -> http::Response<B> {
    let mut response = http::Response::new(B::from(stored.body));
    *response.status_mut() =
        StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.reserve(stored.headers.len() + 1);
    for (name, value) in stored.headers {
        // What was kept came from valid headers; skip anything a foreign
        // writer may have put in the store rather than fail the replay.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_maybe_shared(value),
        ) {
            headers.append(name, value);
        }
    }
    mark_replayed(headers);
    response
}

/// [`IDEMPOTENT_REPLAYED`] and its value, checked once at compile time
/// rather than on every replay.
const REPLAYED: (HeaderName, HeaderValue) = (
    HeaderName::from_static(IDEMPOTENT_REPLAYED),
    HeaderValue::from_static("true"),
);

pub(crate) fn mark_replayed(headers: &mut http::HeaderMap) {
    let (name, value) = REPLAYED;
    headers.insert(name, value);
}
