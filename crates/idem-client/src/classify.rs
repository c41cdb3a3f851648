//! Which outcomes of an attempt are worth another attempt.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, header::RETRY_AFTER};

/// Whether a response may succeed when sent again with the same key: the
/// server was overloaded or a gateway failed (502, 503, 504), the client was
/// rate limited (429), or the same key is still being processed: a 409 that
/// says when to come back (`Retry-After`), as idem's layer does. A 409 without
/// it is the handler's own conflict, and final like every other 4xx.
pub(crate) fn retryable_response(status: StatusCode, headers: &HeaderMap) -> bool {
    match status {
        StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT
        | StatusCode::TOO_MANY_REQUESTS => true,
        StatusCode::CONFLICT => headers.contains_key(RETRY_AFTER),
        _ => false,
    }
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
        let none = HeaderMap::new();
        let mut in_flight = HeaderMap::new();
        in_flight.insert(RETRY_AFTER, "1".parse().unwrap());
        for s in [502, 503, 504, 429] {
            assert!(
                retryable_response(StatusCode::from_u16(s).unwrap(), &none),
                "{s}"
            );
        }
        assert!(
            retryable_response(StatusCode::CONFLICT, &in_flight),
            "409 in flight"
        );
        assert!(
            !retryable_response(StatusCode::CONFLICT, &none),
            "a handler's own 409"
        );
        for s in [200, 201, 400, 401, 403, 404, 408, 413, 422, 500, 501] {
            assert!(
                !retryable_response(StatusCode::from_u16(s).unwrap(), &in_flight),
                "{s}"
            );
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
