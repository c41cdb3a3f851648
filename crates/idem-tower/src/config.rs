//! The layer's settings and their defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method, StatusCode, header, request::Parts};
use idem_core::KeySpace;

use crate::drain::DEFAULT_DRAIN_RETRY_AFTER;

/// Extracts the scope (tenant, principal) of a request; `None` means "no
/// principal" and gets `401`.
pub(crate) type ScopeFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;
/// Decides from the handler's status whether its response is kept.
pub(crate) type KeepFn = Arc<dyn Fn(StatusCode) -> bool + Send + Sync>;

/// Default request body limit for the fingerprint: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// Default largest response kept for replay: 1 MiB.
pub const DEFAULT_STORAGE_LIMIT: usize = 1 << 20;

/// The default keep rule: 2xx, and 4xx except 408, 409, 425 and 429.
///
/// A 5xx (and anything else) releases the key so a retry runs the handler again.
///
/// # Examples
/// ```
/// use http::StatusCode;
/// use idem_tower::default_keep;
/// assert!(default_keep(StatusCode::CREATED));
/// assert!(default_keep(StatusCode::UNPROCESSABLE_ENTITY));
/// assert!(!default_keep(StatusCode::TOO_MANY_REQUESTS));
/// assert!(!default_keep(StatusCode::BAD_GATEWAY));
/// ```
pub fn default_keep(status: StatusCode) -> bool {
    status.is_success()
        || (status.is_client_error() && !matches!(status.as_u16(), 408 | 409 | 425 | 429))
}

/// The headers replayed by default: `Content-Type`, `Location`,
/// `Content-Location`, `ETag`, `Last-Modified`, `Link`.
pub fn default_replayed_headers() -> Vec<HeaderName> {
    vec![
        header::CONTENT_TYPE,
        header::LOCATION,
        header::CONTENT_LOCATION,
        header::ETAG,
        header::LAST_MODIFIED,
        header::LINK,
    ]
}

/// Headers never replayed, whatever the allow-list says: they describe one
/// exchange, not the resource.
pub(crate) fn never_replayed(name: &HeaderName) -> bool {
    let n = name.as_str();
    name == header::SET_COOKIE
        || name == header::DATE
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || n == "idempotent-replayed"
        || n == "x-request-id"
        || n == "request-id"
        || n == "x-correlation-id"
        || n == "retry-after"
        || n.starts_with("ratelimit")
        || n.starts_with("x-ratelimit")
        || n.starts_with("x-rate-limit")
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) methods: Vec<Method>,
    pub(crate) key_required: bool,
    pub(crate) scope: Option<ScopeFn>,
    pub(crate) body_limit: usize,
    pub(crate) storage_limit: usize,
    pub(crate) canonical_json: bool,
    pub(crate) fail_open: bool,
    pub(crate) replayed_headers: Vec<HeaderName>,
    pub(crate) keep: KeepFn,
    pub(crate) key_space: KeySpace,
    pub(crate) drain_retry_after: Duration,
    pub(crate) request_id_header: HeaderName,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            methods: vec![Method::POST, Method::PATCH],
            key_required: false,
            scope: None,
            body_limit: DEFAULT_BODY_LIMIT,
            storage_limit: DEFAULT_STORAGE_LIMIT,
            canonical_json: false,
            fail_open: false,
            replayed_headers: default_replayed_headers(),
            keep: Arc::new(default_keep),
            key_space: KeySpace::default(),
            drain_retry_after: DEFAULT_DRAIN_RETRY_AFTER,
            request_id_header: crate::request_id::DEFAULT_REQUEST_ID_HEADER,
        }
    }
}

impl Config {
    pub(crate) fn is_replayed(&self, name: &HeaderName) -> bool {
        self.replayed_headers.contains(name) && !never_replayed(name)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("methods", &self.methods)
            .field("key_required", &self.key_required)
            .field("scoped", &self.scope.is_some())
            .field("body_limit", &self.body_limit)
            .field("storage_limit", &self.storage_limit)
            .field("canonical_json", &self.canonical_json)
            .field("fail_open", &self.fail_open)
            .field("replayed_headers", &self.replayed_headers)
            .field("key_space", &self.key_space)
            .field("drain_retry_after", &self.drain_retry_after)
            .field("request_id_header", &self.request_id_header)
            .finish_non_exhaustive()
    }
}
