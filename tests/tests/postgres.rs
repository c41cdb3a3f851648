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
    Some(Subject::with_purger("postgres", Arc::new(store)))
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

conformance_tests!(postgres, unreachable: postgres_unreachable, purge: postgres);

/// Checks beyond the suite.
mod extra {
    use idem_sql::{PostgresConfig, PostgresStore};
    use idem_tests::{ServerKind, server};

    use std::sync::Arc;
    use std::time::Duration;

    use idem_conformance::Subject;
    use idem_core::{
        Completion, Error, Fingerprint, Idempotency, IdempotencyStore, StoredResponse,
    };

    use super::sql_support::extra::*;
    use super::sql_support::{counting_table, fresh_table};

    fn url() -> Option<String> {
        match server(ServerKind::Postgres) {
            Ok(s) => Some(s.url),
            Err(reason) => idem_conformance::skip("postgres", &reason),
        }
    }

    async fn open(url: &str, table: &str, max: u32) -> PostgresStore {
        let config = PostgresConfig::from_url(url)
            .unwrap()
            .with_table(table)
            .with_max_connections(max);
        PostgresStore::connect(config).await.unwrap()
    }

    async fn drop_table(store: &PostgresStore, table: &str) {
        let sql = format!("DROP TABLE IF EXISTS {table}");
        idem_sql::sqlx::query(idem_sql::sqlx::AssertSqlSafe(sql))
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
            |s: PostgresStore| Box::pin(async move { s.pool().close().await }),
        )
        .await;
        drop_table(&open(&url, &table, 1).await, &table).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_claims_on_32_connections_have_one_winner() {
        let Some(url) = url() else { return };
        let table = fresh_table();
        let store = open(&url, &table, 32).await;
        let subject = Subject::new("postgres", Arc::new(store.clone()));
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
        let config = PostgresConfig::from_url(&url)
            .unwrap()
            .with_table(&table)
            .with_purge_interval(Duration::from_millis(200));
        let store = PostgresStore::connect(config).await.unwrap();
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
        let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1:1/test")
            .unwrap()
            .with_connect_timeout(Duration::from_millis(300))
            .with_acquire_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = PostgresStore::connect(config.clone()).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let store = PostgresStore::connect(config.with_migrations(false))
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
        for bad in ["", "1x", "a-b", "x; DROP TABLE y", "t\"", "sch.t"] {
            let config = PostgresConfig::from_url("postgres://u:p@127.0.0.1:1/db")
                .unwrap()
                .with_table(bad);
            let err = PostgresStore::connect(config).await.unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad:?}: {err:?}");
        }
    }

    #[tokio::test]
    async fn password_never_shows_in_errors_or_debug() {
        // A wrong password against the real server, a closed port, a bad URL.
        let urls = [
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/no_such_db_idem"),
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/test"),
        ];
        for url in &urls {
            let config = PostgresConfig::from_url(url)
                .unwrap()
                .with_connect_timeout(Duration::from_secs(3))
                .with_acquire_timeout(Duration::from_secs(2));
            assert!(!format!("{config:?}").contains(PASSWORD));
            let err = PostgresStore::connect(config.clone()).await.unwrap_err();
            assert_hidden(&err, PASSWORD);
            let lazy = PostgresStore::connect(config.with_migrations(false))
                .await
                .unwrap();
            assert!(!format!("{lazy:?}").contains(PASSWORD));
            let err = lazy.find(&key("pw")).await.unwrap_err();
            assert_hidden(&err, PASSWORD);
        }
        for bad in [
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:notaport/test"),
            format!("mysql://root:{PASSWORD}@127.0.0.1/test"),
        ] {
            let err = PostgresConfig::from_url(&bad).unwrap_err();
            assert!(matches!(err, Error::Config { .. }));
            assert_hidden(&err, PASSWORD);
        }
    }

    #[tokio::test]
    async fn a_fresh_request_costs_two_statements_and_a_replay_one() {
        let Some(url) = url() else { return };
        let table = counting_table();
        let store = open(&url, &table, 2).await;
        assert_eq!(count_statements(store.clone(), &table).await, (2, 1));
        drop_table(&store, &table).await;
    }

    /// The same count, taken on the wire: a proxy between the store and
    /// the server counts the protocol's Execute and Query messages.
    #[tokio::test]
    async fn the_wire_agrees_two_statements_fresh_and_one_replay() {
        let Some(url) = url() else { return };
        let options: idem_sql::sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let upstream = format!("{}:{}", options.get_host(), options.get_port());
        let proxy = crate::sql_support::pg_proxy::PgProxy::start(upstream).await;
        let proxied = idem_sql::sqlx::ConnectOptions::to_url_lossy(
            &options
                .host("127.0.0.1")
                .port(proxy.port)
                .ssl_mode(idem_sql::sqlx::postgres::PgSslMode::Disable),
        )
        .to_string();
        let table = fresh_table();
        let store = open(&proxied, &table, 1).await;
        let engine = Idempotency::new(Arc::new(store.clone()));
        let k = key("wire");
        let fp = Fingerprint::of_request("POST", "/p", b"");
        let run = || async { ((), Completion::Keep(StoredResponse::default())) };
        let before = proxy.executed();
        engine.execute(&k, fp, run).await.unwrap();
        let fresh = proxy.executed() - before;
        let before = proxy.executed();
        engine.execute(&k, fp, run).await.unwrap();
        let replay = proxy.executed() - before;
        assert_eq!(
            (fresh, replay),
            (2, 1),
            "Execute/Query messages on the wire"
        );
        drop_table(&store, &table).await;
    }
}
