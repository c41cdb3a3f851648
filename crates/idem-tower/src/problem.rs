//! The errors the layer answers itself, as RFC 9457 `application/problem+json`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// The base of every problem `type` URI the layer produces.
pub const PROBLEM_BASE: &str = "https://idem.dev/problems/";

/// Every problem the layer can answer with. The `type` URI of each is stable:
/// clients may branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// `400`: the route requires an `Idempotency-Key` and none was sent.
    MissingKey,
    /// `400`: the `Idempotency-Key` header is malformed (bad quoting, not
    /// printable ASCII, empty, over 255 characters, sent twice).
    InvalidKey,
    /// `400`: the scope extractor produced a scope that cannot be used.
    InvalidScope,
    /// `401`: the scope extractor found no principal for this request.
    MissingScope,
    /// `400`: the request body could not be read.
    UnreadableBody,
    /// `413`: the request body is over the fingerprint limit.
    BodyTooLarge,
    /// `409`: a request with this key is still being processed. The
    /// document names that request in an `original_request_id` member when
    /// it gave an id (see
    /// [`with_request_id_header`](crate::IdempotencyLayer::with_request_id_header)).
    KeyInFlight,
    /// `422`: this key was used with a different request.
    KeyMismatch,
    /// `410`: the request with this key completed, but its response was too
    /// large to keep; the handler is not run again.
    ResponseNotRetained,
    /// `503`: the idempotency store is unavailable (fail closed).
    StoreUnavailable,
    /// `500`: the store failed or holds a record that cannot be read.
    StoreError,
    /// `500`: the handler's response body failed while it was being read.
    ResponseBodyError,
    /// `503`: the server is shutting down ([`Drain`](crate::Drain)) and takes
    /// no new request with a key; retry after `Retry-After` (another
    /// instance may answer). The handler did not run.
    Draining,
}

impl ProblemKind {
    /// The stable slug at the end of the `type` URI.
    pub fn slug(self) -> &'static str {
        match self {
            Self::MissingKey => "missing-key",
            Self::InvalidKey => "invalid-key",
            Self::InvalidScope => "invalid-scope",
            Self::MissingScope => "missing-scope",
            Self::UnreadableBody => "unreadable-body",
            Self::BodyTooLarge => "body-too-large",
            Self::KeyInFlight => "key-in-flight",
            Self::KeyMismatch => "key-mismatch",
            Self::ResponseNotRetained => "response-not-retained",
            Self::StoreUnavailable => "store-unavailable",
            Self::StoreError => "store-error",
            Self::ResponseBodyError => "response-body-error",
            Self::Draining => "draining",
        }
    }

    /// The full `type` URI, e.g. `https://idem.dev/problems/key-in-flight`.
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug())
    }

    /// The HTTP status the problem is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey | Self::InvalidScope | Self::UnreadableBody => {
                StatusCode::BAD_REQUEST
            }
            Self::MissingScope => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::KeyInFlight => StatusCode::CONFLICT,
            Self::KeyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ResponseNotRetained => StatusCode::GONE,
            Self::StoreUnavailable | Self::Draining => StatusCode::SERVICE_UNAVAILABLE,
            Self::StoreError | Self::ResponseBodyError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, constant summary (the problem's `title`).
    pub fn title(self) -> &'static str {
        match self {
            Self::MissingKey => "Idempotency-Key header required",
            Self::InvalidKey => "Malformed Idempotency-Key header",
            Self::InvalidScope => "Invalid idempotency scope",
            Self::MissingScope => "No principal to scope the idempotency key",
            Self::UnreadableBody => "Request body could not be read",
            Self::BodyTooLarge => "Request body too large",
            Self::KeyInFlight => "A request with this Idempotency-Key is in progress",
            Self::KeyMismatch => "Idempotency-Key reused with a different request",
            Self::ResponseNotRetained => "Request completed; its response was not retained",
            Self::StoreUnavailable => "Idempotency store unavailable",
            Self::StoreError => "Idempotency store error",
            Self::ResponseBodyError => "Response body failed",
            Self::Draining => "Server shutting down",
        }
    }
}

/// One problem answer: a kind, a detail for humans, and optional extras.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    kind: ProblemKind,
    detail: String,
    retry_after: Option<Duration>,
    original_status: Option<u16>,
    original_request_id: Option<String>,
}

impl Problem {
    pub(crate) fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            retry_after: None,
            original_status: None,
            original_request_id: None,
        }
    }

    pub(crate) fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// Adds a `Retry-After` header (whole seconds, rounded up, at least 1).
    pub(crate) fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Adds an `original_status` member (for a response not retained).
    pub(crate) fn original_status(mut self, status: u16) -> Self {
        self.original_status = Some(status);
        self
    }

    /// Adds an `original_request_id` member: the id of the request that
    /// holds the key (for a `409`), if known.
    pub(crate) fn original_request_id(mut self, id: Option<String>) -> Self {
        self.original_request_id = id;
        self
    }

    /// The JSON document.
    pub(crate) fn to_json(&self) -> Bytes {
        let mut doc = serde_json::json!({
            "type": self.kind.type_uri(),
            "title": self.kind.title(),
            "status": self.kind.status().as_u16(),
            "detail": self.detail,
        });
        if let Some(status) = self.original_status {
            doc["original_status"] = status.into();
        }
        if let Some(id) = &self.original_request_id {
            doc["original_request_id"] = id.as_str().into();
        }
        Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
    }

    /// The HTTP response, with any body type that can be built from bytes.
    pub(crate) fn into_response<B: From<Bytes>>(self) -> Response<B> {
        let mut response = Response::new(B::from(self.to_json()));
        *response.status_mut() = self.kind.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_document_has_the_rfc_9457_members() {
        let p = Problem::new(ProblemKind::KeyInFlight, "try later")
            .retry_after(Duration::from_millis(1500));
        let json: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(json["type"], "https://idem.dev/problems/key-in-flight");
        assert_eq!(json["status"], 409);
        assert_eq!(json["detail"], "try later");
        let response: Response<String> = {
            let r: Response<Bytes> = p.into_response();
            r.map(|b| String::from_utf8(b.to_vec()).unwrap())
        };
        assert_eq!(response.headers()["retry-after"], "2");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }

    #[test]
    fn draining_is_a_503_with_a_uri_like_the_others() {
        let kind = ProblemKind::Draining;
        assert_eq!(kind.type_uri(), "https://idem.dev/problems/draining");
        assert_eq!(kind.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
