//! The conformance suite on SQLite: a file database (WAL, several
//! connections) and `sqlite::memory:`.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use idem_conformance::Subject;
use idem_sql::{SqliteConfig, SqliteStore};

/// One database file per test process, in a fresh temporary directory, and
/// one table name per process: earlier runs' files cannot be seen.
static FILE: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = tempfile::Builder::new()
        .prefix("idem-sqlite-conformance-")
        .tempdir()
        .expect("a temporary directory")
        .keep();
    dir.join("idem.db")
});
static TABLE: LazyLock<String> =
    LazyLock::new(|| format!("idem_conf_{}", uuid::Uuid::new_v4().simple()));

async fn sqlite_file() -> Option<Subject> {
    let config = SqliteConfig::file(&*FILE)
        .with_table(TABLE.as_str())
        .with_max_connections(8);
    let store = SqliteStore::connect(config)
        .await
        .expect("open the SQLite file");
    Some(Subject::with_purger("sqlite", Arc::new(store)))
}

async fn sqlite_memory() -> Option<Subject> {
    let store = SqliteStore::connect(SqliteConfig::memory())
        .await
        .expect("open an in-memory SQLite database");
    Some(Subject::with_purger("sqlite", Arc::new(store)))
}

/// The suite on a database file shared by every case of this process.
mod file {
    use super::sqlite_file;
    idem_conformance::conformance_tests!(sqlite_file, purge: sqlite_file);
}

/// The suite on a private in-memory database per case.
mod memory {
    use super::sqlite_memory;
    idem_conformance::conformance_tests!(sqlite_memory, purge: sqlite_memory);
}

/// Checks beyond the suite.
mod extra {
    use idem_sql::{SqliteConfig, SqliteStore};

    use std::time::Duration;

    use crate::sql_support::extra::*;
    use crate::sql_support::{counting_table, fresh_table};

    async fn open_file(dir: &std::path::Path, table: &str) -> SqliteStore {
        SqliteStore::connect(SqliteConfig::file(dir.join("idem.db")).with_table(table))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn completed_record_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let table = fresh_table();
        survives_restart(
            || open_file(dir.path(), &table),
            |s: SqliteStore| Box::pin(async move { s.pool().close().await }),
        )
        .await;
    }

    #[tokio::test]
    async fn purge_deletes_expired_rows_and_keeps_live_ones() {
        let store = SqliteStore::connect(SqliteConfig::memory()).await.unwrap();
        purge_deletes_expired_and_keeps_live(&store).await;
    }

    #[tokio::test]
    async fn background_purge_deletes_expired_rows() {
        let config = SqliteConfig::memory().with_purge_interval(Duration::from_millis(200));
        let store = SqliteStore::connect(config).await.unwrap();
        background_purge_runs(&store).await;
    }

    #[tokio::test]
    async fn keys_differing_by_case_or_trailing_space_are_distinct() {
        let store = SqliteStore::connect(SqliteConfig::memory()).await.unwrap();
        near_identical_keys_are_distinct(&store).await;
    }

    #[tokio::test]
    async fn file_database_runs_in_wal_mode_with_a_busy_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let config = SqliteConfig::file(dir.path().join("idem.db"))
            .with_busy_timeout(Duration::from_millis(1234));
        let store = SqliteStore::connect(config).await.unwrap();
        let mode: String = idem_sql::sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let busy: i64 = idem_sql::sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(busy, 1234);
    }

    #[tokio::test]
    async fn bad_table_name_is_a_config_error() {
        let bad = ["", "1x", "a-b", "x; DROP TABLE y", "t\"", "sch.t"];
        bad_table_names_are_config_errors(&bad, |table| {
            SqliteStore::connect(SqliteConfig::memory().with_table(table))
        })
        .await;
    }

    #[tokio::test]
    async fn a_fresh_request_costs_two_statements_and_a_replay_one() {
        let dir = tempfile::tempdir().unwrap();
        let table = counting_table();
        let store = open_file(dir.path(), &table).await;
        assert_eq!(count_statements(store, &table).await, (2, 1));
    }
}

/// The transactional mode: claim, writes and response in one transaction,
/// on a database file of its own per case.
mod tx {
    use std::sync::Arc;
    use std::time::Duration;

    use idem_sql::{SqliteConfig, SqliteStore, sqlx::Sqlite};

    use crate::sql_support::tx::{TxSubject, tx_cases};

    async fn subject() -> Option<Arc<TxSubject<Sqlite>>> {
        let dir = tempfile::Builder::new()
            .prefix("idem-sqlite-tx-")
            .tempdir()
            .expect("a temporary directory")
            .keep();
        let config = SqliteConfig::file(dir.join("tx.db")).with_max_connections(16);
        let store = SqliteStore::connect(config)
            .await
            .expect("open the SQLite file");
        let subject = TxSubject {
            engine: store.transactional(),
            pool: store.pool().clone(),
            table: "payments".to_owned(),
            kill: None,
        };
        subject.create_table().await;
        Some(Arc::new(subject))
    }

    tx_cases!(subject, Duration::from_millis(300));
}
