//! The id of a covered request, kept in its key's record so that a replay
//! and a `409` can name the request that ran.

use http::{HeaderMap, HeaderName};

/// The header read by default: `x-request-id`.
pub const DEFAULT_REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id kept, in bytes (as the record keeps it).
const MAX_LEN: usize = 255;

/// The request's id: the `header` (by default `x-request-id`) if it holds
/// 1 to 255 bytes of printable ASCII, else the trace id of a W3C
/// `traceparent` header (32 lower-case hex digits), else none.
pub(crate) fn request_id(headers: &HeaderMap, header: &HeaderName) -> Option<String> {
    let given = headers
        .get(header)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| (1..=MAX_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()));
    match given {
        Some(id) => Some(id.to_owned()),
        None => trace_id(headers.get("traceparent")?.to_str().ok()?).map(str::to_owned),
    }
}

/// The trace id of a `traceparent` value (`00-<trace id>-<parent id>-<flags>`),
/// if it is a valid, non-zero one.
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && trace.bytes().any(|b| b != b'0');
    valid.then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_header_first_then_the_trace_id() {
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        fn id(pairs: &[(&'static str, &str)]) -> Option<String> {
            request_id(&headers(pairs), &DEFAULT_REQUEST_ID_HEADER)
        }
        assert_eq!(id(&[("x-request-id", " req-1 ")]).as_deref(), Some("req-1"));
        assert_eq!(
            id(&[("x-request-id", "req-1"), ("traceparent", trace)]).as_deref(),
            Some("req-1")
        );
        assert_eq!(
            id(&[("traceparent", trace)]).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // An unusable header falls back to the trace id.
        assert_eq!(
            id(&[("x-request-id", "has space"), ("traceparent", trace)]).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(id(&[]), None);
        let long = "x".repeat(256);
        assert_eq!(id(&[("x-request-id", long.as_str())]), None);
    }

    #[test]
    fn invalid_traceparents_give_nothing() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }
}
