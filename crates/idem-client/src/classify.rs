//! Which outcomes of an attempt are worth another attempt.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, header::RETRY_AFTER};

/// Whether a response with `status` may succeed when sent again with the same
/// key: the server was overloaded or a gateway failed (502, 503, 504), the
/// same key is still being processed (409), or the client was rate limited
/// (429). Every other 4xx is final.
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
            | StatusCode::CONFLICT
            | StatusCode::TOO_MANY_REQUESTS
    )
}

/// Whether a transport error may succeed on another attempt: the connection
/// could not be made, timed out, or was lost before a response arrived.
/// Errors building the request or following redirects are final.
pub(crate) fn retryable_error(error: &reqwest_middleware::Error) -> bool {
    match error {
        reqwest_middleware::Error::Reqwest(e) => e.is_connect() || e.is_timeout() || e.is_request(),
        reqwest_middleware::Error::Middleware(_) => false,
    }
}

/// Whether a request may be sent twice at all: it carries an idempotency key,
/// or its method is idempotent by definition.
pub(crate) fn safe_to_repeat(method: &Method, has_key: bool) -> bool {
    has_key || method.is_idempotent()
}

/// `Retry-After` as a number of seconds (the form servers use for 409, 429
/// and 503). An HTTP date or a malformed value is ignored.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        for s in [502, 503, 504, 409, 429] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 408, 413, 422, 500, 501] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn retry_after_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, " 3 ".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "-1".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn repeatable_requests() {
        assert!(safe_to_repeat(&Method::GET, false));
        assert!(safe_to_repeat(&Method::PUT, false));
        assert!(!safe_to_repeat(&Method::POST, false));
        assert!(safe_to_repeat(&Method::POST, true));
    }
}
