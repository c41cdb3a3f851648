//! The conformance suite on MariaDB (or MySQL), with a pool of 32 connections so the
//! race cases are decided by the server, in a table of this test process.

mod sql_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use idem_conformance::{Subject, conformance_tests, skip};
use idem_sql::{MySqlConfig, MySqlStore, sqlx};
use idem_tests::{ServerKind, server};
use sql_support::{CLOSED_PORT, PROCESS_TABLE, stale_tables};

async fn mysql() -> Option<Subject> {
    let server = match server(ServerKind::Mysql) {
        Ok(s) => s,
        Err(reason) => return skip("mysql", &reason),
    };
    let config = MySqlConfig::from_url(&server.url)
        .expect("a valid IDEM_TEST_MYSQL_URL")
        .with_table(PROCESS_TABLE.as_str())
        .with_max_connections(32);
    let store = MySqlStore::connect(config).await.expect("connect to MySQL");
    drop_stale_tables(&store).await;
    Some(Subject::new("mysql", Arc::new(store)))
}

async fn mysql_unreachable() -> Option<Subject> {
    let url = format!("mysql://root:secret@127.0.0.1:{CLOSED_PORT}/test");
    let config = MySqlConfig::from_url(&url)
        .expect("a valid URL")
        .with_migrations(false)
        .with_acquire_timeout(Duration::from_millis(500));
    let store = MySqlStore::connect(config)
        .await
        .expect("no I/O without migrations");
    Some(Subject::new("mysql", Arc::new(store)))
}

/// Once per process: drops test tables older than an hour.
async fn drop_stale_tables(store: &MySqlStore) {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name LIKE 'idem\\_t\\_%'",
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

conformance_tests!(mysql, unreachable: mysql_unreachable);
