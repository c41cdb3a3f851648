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
    Some(Subject::with_purger("mysql", Arc::new(store)))
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

conformance_tests!(mysql, unreachable: mysql_unreachable, purge: mysql);

/// Checks beyond the suite.
mod extra {
    use idem_sql::sqlx::{self, AssertSqlSafe, Row};
    use idem_sql::{MySqlConfig, MySqlStore};
    use idem_tests::{ServerKind, server};

    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use idem_conformance::Subject;
    use idem_core::{
        Completion, Error, Fingerprint, Idempotency, IdempotencyStore, StoredResponse,
    };

    use super::sql_support::extra::*;
    use super::sql_support::{counting_table, fresh_table};

    fn url() -> Option<String> {
        match server(ServerKind::Mysql) {
            Ok(s) => Some(s.url),
            Err(reason) => idem_conformance::skip("mysql", &reason),
        }
    }

    async fn open(url: &str, table: &str, max: u32) -> MySqlStore {
        let config = MySqlConfig::from_url(url)
            .unwrap()
            .with_table(table)
            .with_max_connections(max);
        MySqlStore::connect(config).await.unwrap()
    }

    async fn drop_table(store: &MySqlStore, table: &str) {
        sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
            .execute(store.pool())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn completed_record_survives_a_restart() {
        let Some(url) = url() else { return };
        let table = fresh_table();
        survives_restart(
            || open(&url, &table, 4),
            |s: MySqlStore| Box::pin(async move { s.pool().close().await }),
        )
        .await;
        drop_table(&open(&url, &table, 1).await, &table).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_claims_on_32_connections_have_one_winner() {
        let Some(url) = url() else { return };
        let table = fresh_table();
        let store = open(&url, &table, 32).await;
        let subject = Subject::new("mysql", Arc::new(store.clone()));
        idem_conformance::cases::racing_claims_have_exactly_one_winner(&subject).await;
        idem_conformance::cases::racing_requests_run_the_handler_once(&subject).await;
        let open_connections = store.pool().size();
        assert!(
            open_connections > 8,
            "the race ran on {open_connections} connections only"
        );
        drop_table(&store, &table).await;
    }

    #[tokio::test]
    async fn purge_deletes_expired_rows_and_keeps_live_ones() {
        let Some(url) = url() else { return };
        let table = fresh_table();
        let store = open(&url, &table, 2).await;
        purge_deletes_expired_and_keeps_live(&store).await;
        drop_table(&store, &table).await;
    }

    #[tokio::test]
    async fn background_purge_deletes_expired_rows() {
        let Some(url) = url() else { return };
        let table = fresh_table();
        let config = MySqlConfig::from_url(&url)
            .unwrap()
            .with_table(&table)
            .with_purge_interval(Duration::from_millis(200));
        let store = MySqlStore::connect(config).await.unwrap();
        background_purge_runs(&store).await;
        drop_table(&store, &table).await;
    }

    #[tokio::test]
    async fn keys_differing_by_case_or_trailing_space_are_distinct() {
        let Some(url) = url() else { return };
        let table = fresh_table();
        let store = open(&url, &table, 2).await;
        near_identical_keys_are_distinct(&store).await;
        drop_table(&store, &table).await;
    }

    /// The connect timeout bounds `connect`, the acquire timeout bounds an
    /// operation, when the server is down.
    #[tokio::test]
    async fn timeouts_bound_an_outage() {
        let config = MySqlConfig::from_url("mysql://root@127.0.0.1:1/test")
            .unwrap()
            .with_connect_timeout(Duration::from_millis(300))
            .with_acquire_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = MySqlStore::connect(config.clone()).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let store = MySqlStore::connect(config.with_migrations(false))
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let err = store.find(&key("down")).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn bad_table_name_is_a_config_error() {
        for bad in ["", "1x", "a-b", "x; DROP TABLE y", "t`", "sch.t"] {
            let config = MySqlConfig::from_url("mysql://u:p@127.0.0.1:1/db")
                .unwrap()
                .with_table(bad);
            let err = MySqlStore::connect(config).await.unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad:?}: {err:?}");
        }
    }

    #[tokio::test]
    async fn password_never_shows_in_errors_or_debug() {
        let urls = [
            format!("mysql://root:{PASSWORD}@127.0.0.1:3306/test"),
            format!("mysql://root:{PASSWORD}@127.0.0.1:1/test"),
        ];
        for url in &urls {
            let config = MySqlConfig::from_url(url)
                .unwrap()
                .with_connect_timeout(Duration::from_secs(3))
                .with_acquire_timeout(Duration::from_secs(2));
            assert!(!format!("{config:?}").contains(PASSWORD));
            let err = MySqlStore::connect(config.clone()).await.unwrap_err();
            assert_hidden(&err, PASSWORD);
            let lazy = MySqlStore::connect(config.with_migrations(false))
                .await
                .unwrap();
            assert!(!format!("{lazy:?}").contains(PASSWORD));
            let err = lazy.find(&key("pw")).await.unwrap_err();
            assert_hidden(&err, PASSWORD);
        }
        for bad in [
            format!("mysql://root:{PASSWORD}@127.0.0.1:notaport/test"),
            format!("postgres://root:{PASSWORD}@127.0.0.1/test"),
        ] {
            let err = MySqlConfig::from_url(&bad).unwrap_err();
            assert!(matches!(err, Error::Config { .. }));
            assert_hidden(&err, PASSWORD);
        }
    }

    /// Expiry is computed and compared in UTC by the server, whatever the
    /// session's time zone: a store whose session runs at +05:00 sees the
    /// records of one at +00:00 as live, and their short TTLs run out on
    /// time for both (with `NOW()` on `DATETIME` they would be 5 hours off).
    #[tokio::test]
    async fn expiry_does_not_depend_on_the_session_time_zone() {
        let Some(url) = url() else { return };
        let table = fresh_table();
        let utc = open(&url, &table, 2).await;
        let sep = if url.contains('?') { '&' } else { '?' };
        let shifted = open(&format!("{url}{sep}timezone=%2B05:00"), &table, 2).await;
        let zone: String = sqlx::query_scalar("SELECT @@session.time_zone")
            .fetch_one(shifted.pool())
            .await
            .unwrap();
        assert_eq!(zone, "+05:00");
        let (a, b) = (key("tz-a"), key("tz-b"));
        let short = Duration::from_millis(1500);
        utc.store(&a, Bytes::from_static(b"a"), short)
            .await
            .unwrap();
        shifted
            .store(&b, Bytes::from_static(b"b"), short)
            .await
            .unwrap();
        for store in [&utc, &shifted] {
            assert!(store.exists(&a).await.unwrap());
            assert!(store.exists(&b).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        for store in [&utc, &shifted] {
            assert!(!store.exists(&a).await.unwrap());
            assert!(!store.exists(&b).await.unwrap());
        }
        drop_table(&utc, &table).await;
    }

    /// Counted twice: by sqlx's statement events, and by the server's own
    /// per-session counter of executed prepared statements.
    #[tokio::test]
    async fn a_fresh_request_costs_two_statements_and_a_replay_two() {
        let Some(url) = url() else { return };
        let table = counting_table();
        // One connection, so the session counters are the store's.
        let store = open(&url, &table, 1).await;
        assert_eq!(count_statements(store.clone(), &table).await, (2, 2));

        let executed = || async {
            let row = sqlx::query("SHOW SESSION STATUS LIKE 'Com_stmt_execute'")
                .fetch_one(store.pool())
                .await
                .unwrap();
            row.try_get::<String, _>(1).unwrap().parse::<u64>().unwrap()
        };
        let engine = Idempotency::new(Arc::new(store.clone()));
        let k = key("server-count");
        let fp = Fingerprint::of_request("POST", "/p", b"");
        let run = || async { ((), Completion::Keep(StoredResponse::default())) };
        // Each SHOW is itself one executed statement.
        let before = executed().await;
        engine.execute(&k, fp, run).await.unwrap();
        let fresh = executed().await - before - 1;
        let before = executed().await;
        engine.execute(&k, fp, run).await.unwrap();
        let replay = executed().await - before - 1;
        assert_eq!((fresh, replay), (2, 2), "server-side Com_stmt_execute");
        drop_table(&store, &table).await;
    }
}
