//! The demo put together: payments, the idempotency layer, chaos, the server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::Method;
use axum::http::header::{self, HeaderName};
use axum::middleware;
use axum::routing::{get, post};
use idem::{IdempotencyStore, StoreConfig};
use idem_tower::{Drain, IdempotencyLayer, Metrics};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::chaos::Chaos;
use crate::config::Config;
use crate::db::Payments;
use crate::page;
use crate::routes::{self, AppState};

/// The request body limit of the idempotency layer (bigger bodies get `413`).
pub const BODY_LIMIT: usize = 16 * 1024;

/// How a drained shutdown ([`Demo::serve_until`]) went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Payments still running when `--drain-timeout` ran out; 0 means every
    /// payment under way finished and its response was stored. An abandoned
    /// one may run again on retry once its lease ends.
    pub abandoned: usize,
    /// Whether every connection closed after its last answer in time; if
    /// not, some finished payments' answers may not have reached their
    /// clients (their retries replay them).
    pub connections_closed: bool,
}

/// The idempotency layer, in one of its two modes.
#[derive(Debug, Clone)]
enum Layer {
    /// A lease per claim, on any store.
    Lease(IdempotencyLayer),
    /// The payment and its idempotency record in one transaction.
    Transactional(crate::store::TxLayer),
}

/// The payments API, ready to serve.
#[derive(Debug, Clone)]
pub struct Demo {
    config: Config,
    payments: Payments,
    layer: Layer,
    chaos: Chaos,
}

impl Demo {
    /// Opens the payments database and the idempotency store `config` names.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run() -> anyhow::Result<()> {
    /// let demo = idem_demo::Demo::open(idem_demo::Config::new("demo.db")).await?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// demo.serve(listener).await;
    /// # Ok(()) }
    /// ```
    ///
    /// Without `--store-url`, the idempotency records are in the payments'
    /// database (SQLite, PostgreSQL or MySQL/MariaDB) and each payment is one transaction with its record
    /// (the transactional mode): a crash at any point leaves either the
    /// payment and its stored response, or neither.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let store_config = crate::store::store_config(&config.store_url())?;
        if config.store_url.is_none() {
            return Self::transactional(config, &store_config).await;
        }
        let payments = Payments::open(&config.database)
            .await
            .with_context(|| format!("cannot open the database {}", config.database.display()))?;
        let store = crate::store::open_store(&store_config)
            .await
            .with_context(|| {
                format!(
                    "cannot open the idempotency store {} (SQLite is built in; for others \
                     build the demo with `--features redis`, `postgres`, `mysql` or `mssql`)",
                    idem::redact_url(&store_config.store_url)
                )
            })?;
        Self::assemble(config, payments, store, &store_config)
    }

    /// Opens the payments database, with `store` as the idempotency store
    /// (for tests that wrap or break the store) and the default lease,
    /// retention and key prefix.
    pub async fn with_store(
        config: Config,
        store: Arc<dyn IdempotencyStore>,
    ) -> anyhow::Result<Self> {
        let payments = Payments::open(&config.database).await?;
        Self::assemble(config, payments, store, &StoreConfig::default())
    }

    /// The payments and the idempotency records in one database, on one
    /// pool, each payment one transaction with its record.
    async fn transactional(config: Config, settings: &StoreConfig) -> anyhow::Result<Self> {
        let (payments, layer) = crate::store::TxLayer::open(&config.database, settings).await?;
        Ok(Self::with_layer(
            config,
            payments,
            Layer::Transactional(layer),
        ))
    }

    fn assemble(
        config: Config,
        payments: Payments,
        store: Arc<dyn IdempotencyStore>,
        settings: &StoreConfig,
    ) -> anyhow::Result<Self> {
        let layer = settings.layer_over(store).context(BAD_PREFIX)?;
        Ok(Self::with_layer(
            config,
            payments,
            Layer::Lease(configure(layer)),
        ))
    }

    fn with_layer(config: Config, payments: Payments, layer: Layer) -> Self {
        // Before the first request, so that `/metrics` shows all of them.
        crate::prometheus::handle();
        let chaos = Chaos::new(config.chaos_drop_rate, config.chaos_mode);
        Self {
            config,
            payments,
            layer,
            chaos,
        }
    }

    /// Whether each payment is one transaction with its idempotency record.
    pub fn is_transactional(&self) -> bool {
        matches!(self.layer, Layer::Transactional(_))
    }

    /// The routes with the idempotency layer, without chaos.
    pub fn router(&self) -> Router {
        let state = AppState {
            payments: self.payments.clone(),
            processing_delay: Duration::from_millis(self.config.processing_delay_ms),
        };
        let payments = Router::new()
            .route("/payments", post(routes::create).get(routes::list))
            .route("/payments/{id}", get(routes::show))
            .route_layer(middleware::from_fn(page::options::apply));
        let payments = match &self.layer {
            Layer::Lease(layer) => payments.route_layer(layer.clone()),
            Layer::Transactional(layer) => layer.cover(payments),
        };
        Router::new()
            .merge(payments)
            .merge(page::router())
            .route("/healthz", get(routes::healthz))
            .route("/metrics", get(crate::prometheus::scrape))
            .fallback(routes::not_found)
            .layer(cors())
            .with_state(state)
    }

    /// The payments table.
    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// The idempotency layer's shutdown handle.
    pub fn drain(&self) -> Drain {
        match &self.layer {
            Layer::Lease(layer) => layer.drain(),
            Layer::Transactional(layer) => layer.drain(),
        }
    }

    /// The layer's counters (executed, replayed, in flight, mismatch, errors).
    pub fn metrics(&self) -> Arc<Metrics> {
        match &self.layer {
            Layer::Lease(layer) => layer.metrics(),
            Layer::Transactional(layer) => layer.metrics(),
        }
    }

    /// The chaos option's state (how many responses were lost).
    pub fn chaos(&self) -> &Chaos {
        &self.chaos
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Serves the API on `listener`, with chaos when configured, until the
    /// task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        let service = self.chaos.wrap(self.router());
        crate::serve::serve(listener, service).await;
    }

    /// Serves the API on `listener` like [`serve`](Self::serve) until
    /// `signal` resolves, then drains and returns:
    ///
    /// 1. new payments get `503` with `Retry-After` (the layer's
    ///    [`Drain`]), while the payments under way finish and are stored; the
    ///    other routes are still served, and new connections still accepted,
    ///    so clients get the `503` rather than a refused connection;
    /// 2. once no payment runs, or `--drain-timeout` has passed, no new
    ///    connection is accepted, and each open one closes after writing the
    ///    answer it is on, within the same timeout.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run() -> anyhow::Result<()> {
    /// let demo = idem_demo::Demo::open(idem_demo::Config::new("demo.db")).await?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// let stopped = demo
    ///     .serve_until(listener, async {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///     })
    ///     .await;
    /// assert_eq!(stopped.abandoned, 0);
    /// # Ok(()) }
    /// ```
    pub async fn serve_until(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> Stopped {
        let drain = self.drain();
        let bound = self.config.drain_timeout;
        let service = self.chaos.wrap(self.router());
        let stop = {
            let drain = drain.clone();
            async move {
                signal.await;
                let deadline = Instant::now() + bound;
                drain.start();
                if !drain.finished(bound).await {
                    tracing::warn!(
                        running = drain.in_flight(),
                        "drain timeout: payments still running are abandoned"
                    );
                }
                deadline
            }
        };
        let connections_closed = crate::serve::serve_until(listener, service, stop).await;
        Stopped {
            abandoned: drain.in_flight(),
            connections_closed,
        }
    }
}

/// Cross-origin use: a page on another origin may send the headers of the
/// protocol and read the ones it answers with. Without them in the lists a
/// browser refuses a request that carries `Idempotency-Key` (the preflight
/// fails), and hides `Idempotent-Replayed` and `Retry-After` from the
/// script, so a page could neither tell a replay from a fresh answer nor
/// wait as long as asked before retrying a `409`.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            HeaderName::from_static("idempotency-key"),
            header::CONTENT_TYPE,
            HeaderName::from_static(routes::ACCOUNT_HEADER),
        ])
        .expose_headers([
            HeaderName::from_static("idempotent-replayed"),
            header::RETRY_AFTER,
            header::LOCATION,
        ])
        .max_age(Duration::from_secs(600))
}

/// What is wrong when the layer cannot be built from the settings.
pub(crate) const BAD_PREFIX: &str = "IDEM_KEY_PREFIX is not a usable key prefix";

/// The demo's own settings of the layer, in either mode; the store's
/// (lease, retention, key prefix) came with it from the [`StoreConfig`].
pub(crate) fn configure<E: idem_core::Engine>(layer: IdempotencyLayer<E>) -> IdempotencyLayer<E> {
    layer
        .with_key_required(true)
        .with_scope(|parts: &http::request::Parts| routes::account(&parts.headers).ok())
        .with_canonical_json(true)
        .with_body_limit(BODY_LIMIT)
}
