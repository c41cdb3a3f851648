//! [`IdempotencyLayer`]: the settings, and the tower `Layer` that applies them.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method, StatusCode, request::Parts};
use idem_core::{Engine, Idempotency, IdempotencyStore, KeySpace};
use tower_layer::Layer;

use crate::config::Config;
use crate::drain::Drain;
use crate::metrics::Metrics;
use crate::service::IdempotencyService;

/// What every service built by one layer shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared<E = Idempotency> {
    pub(crate) engine: E,
    pub(crate) config: Config,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) drain: Drain,
}

/// A tower [`Layer`] that makes POST and PATCH (by default) safe to retry with
/// an `Idempotency-Key` header.
///
/// Cheap to clone; every clone and every service it builds share one set of
/// [`Metrics`] and one [`Drain`].
///
/// # Examples
/// ```
/// use std::{sync::Arc, time::Duration};
/// use axum::{Router, routing::post};
/// use idem_tower::IdempotencyLayer;
///
/// let layer = IdempotencyLayer::new(Arc::new(idem_memory::MemoryStore::new()))
///     .with_key_required(true)
///     .with_scope(|parts: &http::request::Parts| {
///         parts.headers.get("x-tenant")?.to_str().ok().map(str::to_owned)
///     })
///     .with_lease(Duration::from_secs(30))
///     .with_canonical_json(true);
/// let app: Router = Router::new()
///     .route("/payments", post(|| async { "paid" }))
///     .layer(layer.clone());
/// let metrics = layer.metrics();
/// # let _ = (app, metrics);
/// ```
///
/// The layer drives an [`Engine`]: [`Idempotency`] by default (a lease per
/// claim, on any store), or another, such as a SQL store's transactional
/// mode ([`from_engine`](Self::from_engine)), in which the handler's own
/// writes commit with the stored response.
#[derive(Debug, Clone)]
pub struct IdempotencyLayer<E = Idempotency> {
    shared: Arc<Shared<E>>,
}

impl IdempotencyLayer {
    /// A layer over `store` with the defaults: POST and PATCH, key optional,
    /// global scope, 10 s lease renewed while the handler runs, 24 h retention, 1 MiB body and storage limits,
    /// raw-body fingerprints, fail closed, the default replayed headers and
    /// keep rule ([`default_keep`](crate::default_keep)).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// let layer = idem_tower::IdempotencyLayer::new(Arc::new(idem_memory::MemoryStore::new()));
    /// # let _ = layer;
    /// ```
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self::from_engine(Idempotency::new(store))
    }

    /// How long a claim holds a key (default 10 s). A claim left by a crashed
    /// server is taken over after it; a running handler's lease is renewed
    /// every third of it, so a handler may run longer. The handler finds a
    /// [`LeaseSignal`](idem_core::LeaseSignal) in the request's extensions,
    /// which tells it if the lease is lost (its response is then not kept).
    pub fn with_lease(self, lease: Duration) -> Self {
        self.update(|s| s.engine = s.engine.clone().with_lease(lease))
    }

    /// The `Retry-After` of a `409` for a request still running (default 1 s,
    /// never more than what is left of the lease, never under 1 s).
    pub fn with_retry_hint(self, hint: Duration) -> Self {
        self.update(|s| s.engine = s.engine.clone().with_retry_hint(hint))
    }

    /// How long a completed response is replayed (default 24 h).
    pub fn with_retention(self, retention: Duration) -> Self {
        self.update(|s| s.engine = s.engine.clone().with_retention(retention))
    }
}

impl<E: Engine> IdempotencyLayer<E> {
    /// A layer over an engine built elsewhere: an [`Idempotency`] with its
    /// store, lease, retention and retry hint (to share one engine's
    /// configuration with code that calls [`Idempotency::execute`] itself, a
    /// queue consumer, a gRPC service; `with_lease`, `with_retention` and
    /// `with_retry_hint` still apply on top), or another [`Engine`], such as
    /// a SQL store's transactional mode. The layer's other settings are the
    /// defaults of [`new`](IdempotencyLayer::new).
    ///
    /// # Examples
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use idem_core::Idempotency;
    /// use idem_tower::IdempotencyLayer;
    ///
    /// let engine = Idempotency::new(Arc::new(idem_memory::MemoryStore::new()))
    ///     .with_lease(Duration::from_secs(30))
    ///     .with_retention(Duration::from_secs(3600));
    /// let layer = IdempotencyLayer::from_engine(engine.clone()).with_key_required(true);
    /// # let _ = layer;
    /// ```
    pub fn from_engine(engine: E) -> Self {
        Self {
            shared: Arc::new(Shared {
                engine,
                config: Config::default(),
                metrics: Arc::default(),
                drain: Drain::new(),
            }),
        }
    }

    fn update(mut self, f: impl FnOnce(&mut Shared<E>)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// The methods the layer covers (default POST and PATCH); others pass
    /// through untouched.
    pub fn with_methods(self, methods: impl IntoIterator<Item = Method>) -> Self {
        let methods = methods.into_iter().collect();
        self.update(|s| s.config.methods = methods)
    }

    /// Whether a covered request without a key gets `400` (`true`) or passes
    /// through untouched (`false`, the default). Use a second layer on
    /// `route_layer` to require keys on some routes only.
    pub fn with_key_required(self, required: bool) -> Self {
        self.update(|s| s.config.key_required = required)
    }

    /// Scopes keys by what `scope` extracts from the request (a tenant, the
    /// authenticated principal), so two clients choosing the same key never
    /// meet. Without it, one global key space.
    ///
    /// Returning `None` means "no principal": the layer answers `401`
    /// (`missing-scope`) and the handler does not run. Return
    /// `Some(String::new())` to put such requests in the global scope
    /// instead. A scope over 256 bytes or with control characters gets `400`.
    pub fn with_scope<F>(self, scope: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.update(|s| s.config.scope = Some(Arc::new(scope)))
    }

    /// The largest request body buffered for the fingerprint, in bytes
    /// (default 1 MiB); a larger one gets `413`.
    pub fn with_body_limit(self, bytes: usize) -> Self {
        self.update(|s| s.config.body_limit = bytes)
    }

    /// The largest response kept for replay, in bytes of body and replayed
    /// headers (default 1 MiB). A larger response is still returned, and the
    /// key is recorded as "completed, response not retained": a retry gets a
    /// `410` problem saying so, and the handler never runs again.
    pub fn with_storage_limit(self, bytes: usize) -> Self {
        self.update(|s| s.config.storage_limit = bytes)
    }

    /// Fingerprints JSON bodies (by `Content-Type`) in canonical form, so key
    /// order and whitespace do not make a different payload. Off by default.
    pub fn with_canonical_json(self, canonical: bool) -> Self {
        self.update(|s| s.config.canonical_json = canonical)
    }

    /// When the store fails, pass the request through to the handler without
    /// idempotency (`true`) instead of answering `503` (`false`, the default).
    pub fn with_fail_open(self, fail_open: bool) -> Self {
        self.update(|s| s.config.fail_open = fail_open)
    }

    /// The response headers kept and replayed (default
    /// [`default_replayed_headers`](crate::default_replayed_headers)).
    /// `Set-Cookie`, `Date`, `Content-Length`, request ids and rate-limit
    /// headers are never replayed, even if listed.
    pub fn with_replayed_headers(self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        let headers = headers.into_iter().collect();
        self.update(|s| s.config.replayed_headers = headers)
    }

    /// Which handler statuses are kept (default
    /// [`default_keep`](crate::default_keep)); any other status releases the
    /// key, so a retry runs the handler again.
    pub fn with_keep_when<F>(self, keep: F) -> Self
    where
        F: Fn(StatusCode) -> bool + Send + Sync + 'static,
    {
        self.update(|s| s.config.keep = Arc::new(keep))
    }

    /// The storage key namespace (default prefix `idempotency:`).
    pub fn with_key_space(self, key_space: KeySpace) -> Self {
        self.update(|s| s.config.key_space = key_space)
    }

    /// The `Retry-After` of the `503` answered to new covered requests while
    /// the layer drains (default [`DEFAULT_DRAIN_RETRY_AFTER`](crate::DEFAULT_DRAIN_RETRY_AFTER),
    /// 1 s; whole seconds, rounded up, at least 1). Set it to about the time
    /// another instance needs to take the traffic.
    pub fn with_drain_retry_after(self, after: Duration) -> Self {
        self.update(|s| s.config.drain_retry_after = after)
    }

    /// The header that carries a request's id (default
    /// [`DEFAULT_REQUEST_ID_HEADER`](crate::DEFAULT_REQUEST_ID_HEADER),
    /// `x-request-id`). The id of the request that runs the handler is kept
    /// in the key's record (without the header, the trace id of a W3C
    /// `traceparent` header); a replay is logged with it, and a `409` names
    /// it in its `original_request_id` member. An id that is empty, over
    /// 255 bytes or not printable ASCII is not kept.
    pub fn with_request_id_header(self, header: HeaderName) -> Self {
        self.update(|s| s.config.request_id_header = header)
    }

    /// The counters shared by this layer, its clones and their services.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// The shutdown handle shared by this layer, its clones and their
    /// services: see [`Drain`].
    ///
    /// # Examples
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use idem_tower::IdempotencyLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = IdempotencyLayer::new(Arc::new(idem_memory::MemoryStore::new()))
    ///     .with_drain_retry_after(Duration::from_secs(2));
    /// let drain = layer.drain();
    /// // ... serve with `layer`; on shutdown:
    /// drain.start();
    /// let all_stored = drain.finished(Duration::from_secs(10)).await;
    /// assert!(all_stored);
    /// # }
    /// ```
    pub fn drain(&self) -> Drain {
        self.shared.drain.clone()
    }
}

impl<S, E: Engine> Layer<S> for IdempotencyLayer<E> {
    type Service = IdempotencyService<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        IdempotencyService::new(inner, self.shared.clone())
    }
}
