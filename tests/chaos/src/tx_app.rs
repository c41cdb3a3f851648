//! `idem-chaos app --transactional`: the app in the SQL stores'
//! transactional mode.
//!
//! Its handler's side effect is the history itself: the `start` and `end`
//! lines of each run are rows written through the request's transaction, so
//! the history holds exactly the runs that committed, with their stored
//! responses. `GET /history` returns it. The checker then needs no allowance
//! for runs cut by a kill: a cut run left nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use idem::StoreConfig;
use idem_sql::sqlx::{
    self, AssertSqlSafe, ColumnIndex, Database, Decode, Executor, IntoArguments, Pool, Type,
};
use idem_sql::{IdempotentTx, Transactional};
use idem_tower::IdempotencyLayer;
use rand::Rng as _;

use crate::app::{AppArgs, connect_retrying, serve_draining};

struct TxApp {
    table: String,
    name: String,
    runs: AtomicU64,
    handler: (u64, u64),
}

/// Serves `args` in the transactional mode on the SQL store `config` names.
///
/// # Errors
/// A store that is not SQL, or that cannot be reached; the port.
pub async fn serve(args: AppArgs, config: StoreConfig) -> Result<(), String> {
    let name = args.name.clone();
    let backend =
        idem::backend_for_url(&config.store_url).map_err(|e| format!("{name}: the store: {e}"))?;
    match backend {
        idem::Backend::Sqlite => {
            let s = connect_retrying(&name, || config.connect_sqlite()).await?;
            serve_on(args, s.transactional(), s.pool().clone()).await
        }
        idem::Backend::Postgres => {
            let s = connect_retrying(&name, || config.connect_postgres()).await?;
            serve_on(args, s.transactional(), s.pool().clone()).await
        }
        idem::Backend::MySql => {
            let s = connect_retrying(&name, || config.connect_mysql()).await?;
            serve_on(args, s.transactional(), s.pool().clone()).await
        }
        other => Err(format!("{other:?} has no transactional mode")),
    }
}

/// The history table of this run: one per history file, so that cells
/// sharing a server never see each other's rows.
fn table_of(args: &AppArgs) -> String {
    use std::hash::{Hash, Hasher};
    // Not RandomState: every app of the run must name the same table.
    let mut hasher = std::hash::DefaultHasher::new();
    args.history.hash(&mut hasher);
    format!("chaos_history_{:016x}", hasher.finish())
}

async fn serve_on<DB>(
    args: AppArgs,
    engine: Transactional<DB>,
    pool: Pool<DB>,
) -> Result<(), String>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
    usize: ColumnIndex<DB::Row>,
{
    let table = table_of(&args);
    let create = format!("CREATE TABLE IF NOT EXISTS {table} (line VARCHAR(255) NOT NULL)");
    // The apps start together: a racing CREATE may fail once.
    for attempt in 0..5 {
        match sqlx::query(AssertSqlSafe(create.clone()))
            .execute(&pool)
            .await
        {
            Ok(_) => break,
            Err(e) if attempt == 4 => return Err(format!("{table}: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let engine = if args.split_claim {
        engine.with_claim_committed_apart()
    } else {
        engine
    };
    let layer = IdempotencyLayer::from_engine(engine).with_key_required(true);
    let drain = layer.drain();
    let app = Arc::new(TxApp {
        table,
        name: args.name.clone(),
        runs: AtomicU64::new(0),
        handler: args.handler(),
    });
    let router = Router::new()
        .route("/work", post(work::<DB>))
        .layer(layer)
        .route("/health", get(|| async { "ok" }))
        .route("/history", get(history::<DB>))
        .with_state((app, pool));
    serve_draining(&args, router, drain, Duration::from_secs(10)).await
}

type AppState<DB> = (Arc<TxApp>, Pool<DB>);

async fn work<DB>(
    State((app, _)): State<AppState<DB>>,
    headers: HeaderMap,
    mut tx: IdempotentTx<DB>,
) -> (StatusCode, String)
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
{
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or("-")
        .to_owned();
    let n = app.runs.fetch_add(1, Ordering::Relaxed) + 1;
    let run = format!("{}-{n}", app.name);
    let (min, max) = app.handler;
    let pause = rand::rng().random_range(min..=max);
    for (step, wait) in [("start", pause), ("end", 0)] {
        let sql = format!(
            "INSERT INTO {} (line) VALUES ('{step} {key} {run}')",
            app.table
        );
        if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await {
            // A 5xx rolls the run back.
            return (StatusCode::SERVICE_UNAVAILABLE, format!("history: {e}"));
        }
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    (StatusCode::CREATED, run)
}

async fn history<DB>(State((app, pool)): State<AppState<DB>>) -> (StatusCode, String)
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
    usize: ColumnIndex<DB::Row>,
{
    let sql = format!("SELECT line FROM {}", app.table);
    match sqlx::query_scalar::<DB, String>(AssertSqlSafe(sql))
        .fetch_all(&pool)
        .await
    {
        Ok(lines) => (StatusCode::OK, lines.join("\n")),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}")),
    }
}
