//! idem-sql beyond the conformance suite, on SQLite, PostgreSQL and MariaDB:
//! restart survival, purge, key distinctness, table-name checks, passwords
//! kept out of errors, the race on a 32-connection pool, and the number of
//! statements a request costs.

mod sql_support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use idem_conformance::Subject;
use idem_core::{
    Claim, Completion, Error, Fingerprint, Idempotency, IdempotencyStore, Outcome, PurgeExpired,
    StoreKey, StoredResponse,
};
use sql_support::{fresh_table, statements};

const HOUR: Duration = Duration::from_secs(3600);

fn key(text: &str) -> StoreKey {
    StoreKey::parse(format!("extra:{}:{text}", uuid::Uuid::new_v4().simple())).unwrap()
}

/// Writes a completed record through one store, drops it (closing its pool),
/// opens a new one on the same table, and replays.
async fn survives_restart<S, F, Fut>(open: F, close: impl Fn(S) -> Fut2<()>)
where
    S: IdempotencyStore + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let k = key("restart");
    let first = open().await;
    let Claim::Acquired(token) = first
        .claim(&k, Bytes::from_static(b"p"), HOUR)
        .await
        .unwrap()
    else {
        panic!("fresh key taken")
    };
    first
        .complete(&k, &token, Bytes::from_static(b"paid"), HOUR)
        .await
        .unwrap();
    close(first).await;
    let second = open().await;
    assert_eq!(
        second
            .claim(&k, Bytes::from_static(b"p2"), HOUR)
            .await
            .unwrap(),
        Claim::Existing(Bytes::from_static(b"paid")),
        "the completed record did not survive the restart"
    );
}

type Fut2<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

/// An expired row is deleted by `purge_expired`, a live one is kept, and a
/// second purge finds nothing (the row is gone, not just hidden).
async fn purge_deletes_expired_and_keeps_live<S: PurgeExpired>(store: &S) {
    let (old, live) = (key("old"), key("live"));
    store
        .store(&old, Bytes::from_static(b"o"), Duration::from_millis(200))
        .await
        .unwrap();
    store
        .store(&live, Bytes::from_static(b"l"), HOUR)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    assert_eq!(
        store.find(&live).await.unwrap(),
        Some(Bytes::from_static(b"l"))
    );
    assert_eq!(store.find(&old).await.unwrap(), None);
}

/// With a purge interval, expired rows disappear without a call.
async fn background_purge_runs<S: PurgeExpired>(store: &S) {
    let old = key("bg");
    store
        .store(&old, Bytes::from_static(b"o"), Duration::from_millis(200))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        store.purge_expired().await.unwrap(),
        0,
        "the background task did not purge the expired row"
    );
}

/// `k`, `K` and `k ` are three keys (no case folding, no pad-space
/// comparison), and so are keys that differ only in a multi-byte character.
async fn near_identical_keys_are_distinct<S: IdempotencyStore>(store: &S) {
    let base = format!("extra:{}:", uuid::Uuid::new_v4().simple());
    let names = ["key", "KEY", "key ", "key  ", "kéy", "kÉy"];
    for (i, name) in names.iter().enumerate() {
        let k = StoreKey::parse(format!("{base}{name}")).unwrap();
        store
            .store(&k, Bytes::from(i.to_string()), HOUR)
            .await
            .unwrap();
    }
    for (i, name) in names.iter().enumerate() {
        let k = StoreKey::parse(format!("{base}{name}")).unwrap();
        assert_eq!(
            store.find(&k).await.unwrap(),
            Some(Bytes::from(i.to_string())),
            "key {name:?} collapsed into another"
        );
    }
}

/// Statements run for one fresh request (claim + complete through the
/// engine) and for one replay (a claim that finds the completed record).
async fn count_statements<S: IdempotencyStore + 'static>(store: S, table: &str) -> (usize, usize) {
    statements::install();
    let engine = Idempotency::new(Arc::new(store));
    let k = key("count");
    let fp = Fingerprint::of_request("POST", "/payments", b"{}");
    let run = || async {
        let response = StoredResponse {
            status: 201,
            ..Default::default()
        };
        ((), Completion::Keep(response))
    };
    let before = statements::on_table(table).len();
    let outcome = engine.execute(&k, fp, run).await.unwrap();
    assert!(matches!(outcome, Outcome::Executed(())));
    let fresh = statements::on_table(table).len() - before;
    let before = statements::on_table(table).len();
    let outcome = engine.execute(&k, fp, run).await.unwrap();
    assert!(matches!(outcome, Outcome::Replayed(_)), "{outcome:?}");
    let replay = statements::on_table(table).len() - before;
    (fresh, replay)
}

/// Neither the error nor its source chain, in Display or Debug, shows the
/// password.
fn assert_hidden(error: &Error, password: &str) {
    let mut texts = vec![error.to_string(), format!("{error:?}")];
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
        source = e.source();
    }
    for text in texts {
        assert!(!text.contains(password), "password leaked: {text}");
    }
}

const PASSWORD: &str = "Sup3rS3cretPw";

mod sqlite {
    use idem_sql::{SqliteConfig, SqliteStore};

    use super::*;

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
    async fn bad_table_name_is_a_config_error() {
        for bad in ["", "1x", "a-b", "x; DROP TABLE y", "t\"", "sch.t"] {
            let err = SqliteStore::connect(SqliteConfig::memory().with_table(bad))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad:?}: {err:?}");
        }
    }

    #[tokio::test]
    async fn a_fresh_request_costs_two_statements_and_a_replay_one() {
        let dir = tempfile::tempdir().unwrap();
        let table = fresh_table();
        let store = open_file(dir.path(), &table).await;
        assert_eq!(count_statements(store, &table).await, (2, 1));
    }
}

mod postgres {
    use idem_sql::{PostgresConfig, PostgresStore};
    use idem_tests::{ServerKind, server};

    use super::*;

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
        let table = fresh_table();
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
        let proxy = sql_support::pg_proxy::PgProxy::start(upstream).await;
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

mod mysql {
    use idem_sql::sqlx::{self, AssertSqlSafe, Row};
    use idem_sql::{MySqlConfig, MySqlStore};
    use idem_tests::{ServerKind, server};

    use super::*;

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
        let table = fresh_table();
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
