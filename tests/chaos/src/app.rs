//! `idem-chaos app`: one app server on the idempotency layer.
//!
//! Its covered route, `POST /work`, logs `start` and `end` of every handler
//! run to the shared history and answers `201` with the run id as its body.
//! `GET /health` (not covered) says it is up. On SIGTERM it drains: it stops
//! accepting, lets running requests finish and store their result, and
//! exits 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use idem_core::Idempotency;
use idem_tower::{Drain, IdempotencyLayer};
use rand::Rng as _;

use crate::history::{Step, Writer};

/// The lease the apps take (the pause fault lasts half of it).
pub const LEASE: Duration = Duration::from_secs(3);

/// The lease for the faults after which every store connection is opened
/// again (a restart, a cut, a reset): idem's default lease. A restart takes
/// seconds, and logins are slow on a busy machine (30 PostgreSQL logins at
/// once took 6.3 s on a loaded 2-core machine): longer than what is left of
/// a 3 s lease, and no completion outlives its lease.
pub const LONG_LEASE: Duration = idem_core::DEFAULT_LEASE;

/// How long establishing a store connection may take (password hashing in
/// a debug build on a busy machine is slow).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one store operation may take in the apps: well under the
/// pause, so a stalled store is noticed while it stalls.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(1000);

/// The app's command line.
#[derive(Debug, clap::Args)]
pub struct AppArgs {
    /// Where to listen.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The store, as a URL the facade reads.
    #[arg(long)]
    pub store_url: String,
    /// The history file shared by every app of the run.
    #[arg(long)]
    pub history: PathBuf,
    /// This process's name in run ids (`a<i>.<incarnation>`).
    #[arg(long)]
    pub name: String,
    /// The shortest handler run, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub handler_min_ms: u64,
    /// The longest handler run, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub handler_max_ms: u64,
    /// The lease, in milliseconds.
    #[arg(long, default_value_t = LEASE.as_millis() as u64)]
    pub lease_ms: u64,
    /// Test-only: one attempt to store a result (a store blip loses it).
    #[arg(long)]
    pub no_completion_retries: bool,
    /// The SQL stores' transactional mode: each run's history rows commit
    /// with its stored response (see `tx_app`).
    #[arg(long)]
    pub transactional: bool,
    /// Test-only, with `--transactional`: the claim commits apart from the
    /// run's writes, which breaks the mode's guarantee.
    #[arg(long)]
    pub split_claim: bool,
}

impl AppArgs {
    /// The shortest and longest handler run, in milliseconds.
    pub(crate) fn handler(&self) -> (u64, u64) {
        (
            self.handler_min_ms,
            self.handler_max_ms.max(self.handler_min_ms),
        )
    }
}

struct App {
    history: Writer,
    name: String,
    runs: AtomicU64,
    handler: (u64, u64),
}

/// Serves until SIGTERM (then drains) or SIGKILL.
///
/// # Errors
/// When the store cannot be reached at start, or the port or the history
/// cannot be opened.
pub async fn serve(args: AppArgs) -> Result<(), String> {
    let mut config = idem::StoreConfig::from_url(args.store_url.clone());
    config.operation_timeout = Some(OPERATION_TIMEOUT);
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    if args.transactional {
        return crate::tx_app::serve(args, config).await;
    }
    let store = connect_retrying(&args.name, || config.connect()).await?;
    let lease = Duration::from_millis(args.lease_ms);
    let bound = if args.no_completion_retries {
        Duration::ZERO
    } else {
        lease
    };
    let engine = Idempotency::new(store)
        .with_lease(lease)
        .with_completion_bound(bound);
    let layer = IdempotencyLayer::from_engine(engine).with_key_required(true);
    let drain = layer.drain();
    let history = Writer::open(&args.history).map_err(|e| format!("the history: {e}"))?;
    let app = Arc::new(App {
        history,
        name: args.name.clone(),
        runs: AtomicU64::new(0),
        handler: args.handler(),
    });
    let router = Router::new()
        .route("/work", post(work))
        .layer(layer)
        .route("/health", get(|| async { "ok" }))
        .with_state(app);
    serve_draining(&args, router, drain, lease).await
}

/// Connects with `connect`, trying again on a transient error (3 times,
/// 300 ms apart), as a supervisor would restart the app: apps starting
/// together on one SQLite file can find it locked while another creates
/// the schema.
///
/// # Errors
/// The last error, with the app's `name`.
pub(crate) async fn connect_retrying<T, F, Fut>(name: &str, mut connect: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, idem::Error>>,
{
    let mut attempt = 0;
    loop {
        match connect().await {
            Err(e) if e.is_transient() && attempt < 3 => attempt += 1,
            other => return other.map_err(|e| format!("{name}: the store: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Serves `router` on the app's port until SIGTERM, then drains: new
/// covered requests get 503 (their clients retry elsewhere), running ones
/// finish and store their result within `bound`; then the server stops,
/// answering what it has.
pub(crate) async fn serve_draining(
    args: &AppArgs,
    router: Router,
    drain: Drain,
    bound: Duration,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let shutdown = async move {
        sigterm().await;
        drain.start();
        if !drain.finished(bound).await {
            tracing::error!(
                in_flight = drain.in_flight(),
                "drain: requests still running"
            );
        }
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("serving: {e}"))
}

/// Resolves at the first SIGTERM.
async fn sigterm() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

async fn work(State(app): State<Arc<App>>, headers: HeaderMap) -> (StatusCode, String) {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let n = app.runs.fetch_add(1, Ordering::Relaxed) + 1;
    let run = format!("{}-{n}", app.name);
    if let Err(e) = app.history.append(Step::Start, &key, &run) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("history: {e}"));
    }
    let (min, max) = app.handler;
    let pause = rand::rng().random_range(min..=max);
    tokio::time::sleep(Duration::from_millis(pause)).await;
    if let Err(e) = app.history.append(Step::End, &key, &run) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("history: {e}"));
    }
    (StatusCode::CREATED, run)
}
