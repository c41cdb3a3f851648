//! The conformance suite on PostgreSQL, with a pool of 32 connections so the
//! race cases are decided by the server, in a table of this test process.

mod sql_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use idem_conformance::{Subject, conformance_tests, skip};
use idem_sql::{PostgresConfig, PostgresStore, sqlx};
use idem_tests::{ServerKind, server};
use sql_support::{CLOSED_PORT, PROCESS_TABLE, stale_tables};

async fn postgres() -> Option<Subject> {
    let server = match server(ServerKind::Postgres) {
        Ok(s) => s,
        Err(reason) => return skip("postgres", &reason),
    };
    let config = PostgresConfig::from_url(&server.url)
        .expect("a valid IDEM_TEST_POSTGRES_URL")
        .with_table(PROCESS_TABLE.as_str())
        .with_max_connections(32);
    let store = PostgresStore::connect(config)
        .await
        .expect("connect to PostgreSQL");
    drop_stale_tables(&store).await;
    Some(Subject::new("postgres", Arc::new(store)))
}

async fn postgres_unreachable() -> Option<Subject> {
    let url = format!("postgres://postgres:secret@127.0.0.1:{CLOSED_PORT}/test");
    let config = PostgresConfig::from_url(&url)
        .expect("a valid URL")
        .with_migrations(false)
        .with_acquire_timeout(Duration::from_millis(500));
    let store = PostgresStore::connect(config)
        .await
        .expect("no I/O without migrations");
    Some(Subject::new("postgres", Arc::new(store)))
}

/// Once per process: drops test tables older than an hour.
async fn drop_stale_tables(store: &PostgresStore) {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
         AND tablename LIKE 'idem\\_t\\_%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap_or_default();
    for name in stale_tables(names) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}")))
            .execute(store.pool())
            .await;
    }
}

conformance_tests!(postgres, unreachable: postgres_unreachable);
