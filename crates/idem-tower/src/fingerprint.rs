//! The request fingerprint: method, path and query, body (optionally as
//! canonical JSON).

use std::io::Write;

use http::{HeaderMap, Method, Uri, header};
use idem_core::{Fingerprint, FingerprintBuilder};
use serde_json::Value;

/// Fingerprints a buffered request.
///
/// With `canonical_json`, a body whose `Content-Type` is JSON (`application/json`
/// or `*/*+json`) and that parses is hashed in its canonical form: object keys
/// sorted, no whitespace. A body that does not parse is hashed as sent.
pub(crate) fn fingerprint(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    canonical_json: bool,
) -> Fingerprint {
    let mut builder = FingerprintBuilder::new();
    builder.part(method.as_str().as_bytes());
    builder.part(
        uri.path_and_query()
            .map_or(uri.path(), |pq| pq.as_str())
            .as_bytes(),
    );
    let canonical = (canonical_json && is_json(headers))
        .then(|| canonical_json_bytes(body))
        .flatten();
    builder.part(canonical.as_deref().unwrap_or(body));
    builder.finish()
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .get(essence.len().saturating_sub(5)..)
            .is_some_and(|s| s.eq_ignore_ascii_case("+json"))
}

/// The canonical form of a JSON document, or `None` if it does not parse.
pub(crate) fn canonical_json_bytes(body: &[u8]) -> Option<Vec<u8>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let mut out = Vec::with_capacity(body.len());
    write_canonical(&value, &mut out);
    Some(out)
}

/// Writes `value` with object keys sorted by their bytes and no whitespace.
/// Sorting is done here, not left to serde_json's map, because another crate
/// in the build may turn on serde_json's `preserve_order`.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Writing a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        h
    }

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let a = canonical_json_bytes(br#"{ "b": [1, {"z":1,"a":2}], "a": "x" }"#).unwrap();
        assert_eq!(a, br#"{"a":"x","b":[1,{"a":2,"z":1}]}"#);
        assert!(canonical_json_bytes(b"{not json").is_none());
    }

    #[test]
    fn key_order_counts_only_without_the_option() {
        let uri: Uri = "/payments?x=1".parse().unwrap();
        let h = json_headers();
        let a = br#"{"amount":1,"currency":"EUR"}"#;
        let b = br#"{ "currency" : "EUR", "amount" : 1 }"#;
        assert_eq!(
            fingerprint(&Method::POST, &uri, &h, a, true),
            fingerprint(&Method::POST, &uri, &h, b, true)
        );
        assert_ne!(
            fingerprint(&Method::POST, &uri, &h, a, false),
            fingerprint(&Method::POST, &uri, &h, b, false)
        );
        // Not JSON by content type: hashed as sent.
        assert_ne!(
            fingerprint(&Method::POST, &uri, &HeaderMap::new(), a, true),
            fingerprint(&Method::POST, &uri, &HeaderMap::new(), b, true)
        );
    }

    #[test]
    fn method_path_and_query_count() {
        let h = HeaderMap::new();
        let fp = |m: &Method, u: &str| fingerprint(m, &u.parse().unwrap(), &h, b"{}", false);
        assert_ne!(fp(&Method::POST, "/a"), fp(&Method::PATCH, "/a"));
        assert_ne!(fp(&Method::POST, "/a"), fp(&Method::POST, "/b"));
        assert_ne!(fp(&Method::POST, "/a?x=1"), fp(&Method::POST, "/a?x=2"));
        assert_eq!(
            fp(&Method::POST, "/a?x=1"),
            Fingerprint::of_request("POST", "/a?x=1", b"{}")
        );
    }

    #[test]
    fn plus_json_media_types_are_json() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
    }
}
