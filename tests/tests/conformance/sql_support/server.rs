//! The checks beyond the suite that the server-backed SQL stores
//! (PostgreSQL, MySQL) share, written once over [`ServerStore`]; each test
//! target keeps its own `#[tokio::test]` names and calls these.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use idem_conformance::Subject;
use idem_core::{Error, IdempotencyStore, PurgeExpired, Result};
use idem_sql::sqlx::{self, AssertSqlSafe};
use idem_sql::{MySqlConfig, MySqlStore, PostgresConfig, PostgresStore};
use idem_tests::{ServerKind, server};

use super::extra::{
    PASSWORD, assert_hidden, background_purge_runs, bad_table_names_are_config_errors, key,
    near_identical_keys_are_distinct, purge_deletes_expired_and_keeps_live, survives_restart,
};
use super::{PROCESS_TABLE, fresh_table, stale_tables};

/// What a server-backed SQL store and its config differ in, for the shared
/// checks: the names, the server, and the calls that exist on both.
pub(crate) trait ServerStore:
    IdempotencyStore + PurgeExpired + Clone + fmt::Debug + 'static
{
    /// The store's config type.
    type Config: Clone + fmt::Debug;
    /// The backend name subjects carry.
    const NAME: &'static str;
    /// The server the tests need.
    const KIND: ServerKind;
    /// `Config::from_url`.
    fn from_url(url: &str) -> Result<Self::Config>;
    /// `Config::with_table`.
    fn with_table(config: Self::Config, table: &str) -> Self::Config;
    /// `Config::with_max_connections`.
    fn with_max_connections(config: Self::Config, max: u32) -> Self::Config;
    /// `Config::with_purge_interval`.
    fn with_purge_interval(config: Self::Config, interval: Duration) -> Self::Config;
    /// `Config::with_connect_timeout`.
    fn with_connect_timeout(config: Self::Config, timeout: Duration) -> Self::Config;
    /// `Config::with_operation_timeout`.
    fn with_operation_timeout(config: Self::Config, timeout: Duration) -> Self::Config;
    /// `Config::with_migrations`.
    fn with_migrations(config: Self::Config, on: bool) -> Self::Config;
    /// `Store::connect`.
    fn connect(config: Self::Config) -> impl Future<Output = Result<Self>> + Send;
    /// `Store::connect_lazy`.
    fn connect_lazy(config: Self::Config) -> Result<Self>;
    /// How many connections the pool holds open.
    fn pool_size(&self) -> u32;
    /// Closes the pool.
    fn close(&self) -> impl Future<Output = ()> + Send;
    /// Runs one statement on the pool.
    fn execute(&self, sql: String) -> impl Future<Output = sqlx::Result<()>> + Send;
    /// The names a query of one text column returns.
    fn names(&self, sql: &'static str) -> impl Future<Output = sqlx::Result<Vec<String>>> + Send;
    /// Drops `table` through this store's pool.
    fn drop_table(&self, table: &str) -> impl Future<Output = ()> + Send;
}

macro_rules! server_store {
    ($store:ty, $config:ty, $name:literal, $kind:expr) => {
        impl ServerStore for $store {
            type Config = $config;
            const NAME: &'static str = $name;
            const KIND: ServerKind = $kind;
            fn from_url(url: &str) -> Result<$config> {
                <$config>::from_url(url)
            }
            fn with_table(config: $config, table: &str) -> $config {
                config.with_table(table)
            }
            fn with_max_connections(config: $config, max: u32) -> $config {
                config.with_max_connections(max)
            }
            fn with_purge_interval(config: $config, interval: Duration) -> $config {
                config.with_purge_interval(interval)
            }
            fn with_connect_timeout(config: $config, timeout: Duration) -> $config {
                config.with_connect_timeout(timeout)
            }
            fn with_operation_timeout(config: $config, timeout: Duration) -> $config {
                config.with_operation_timeout(timeout)
            }
            fn with_migrations(config: $config, on: bool) -> $config {
                config.with_migrations(on)
            }
            async fn connect(config: $config) -> Result<Self> {
                <$store>::connect(config).await
            }
            fn connect_lazy(config: $config) -> Result<Self> {
                <$store>::connect_lazy(config)
            }
            fn pool_size(&self) -> u32 {
                self.pool().size()
            }
            async fn close(&self) {
                self.pool().close().await
            }
            async fn execute(&self, sql: String) -> sqlx::Result<()> {
                sqlx::query(AssertSqlSafe(sql))
                    .execute(self.pool())
                    .await
                    .map(drop)
            }
            async fn names(&self, sql: &'static str) -> sqlx::Result<Vec<String>> {
                sqlx::query_scalar(sql).fetch_all(self.pool()).await
            }
            async fn drop_table(&self, table: &str) {
                self.execute(format!("DROP TABLE IF EXISTS {table}"))
                    .await
                    .unwrap();
            }
        }
    };
}

server_store!(MySqlStore, MySqlConfig, "mysql", ServerKind::Mysql);
server_store!(
    PostgresStore,
    PostgresConfig,
    "postgres",
    ServerKind::Postgres
);

/// The suite's subject: a store with 32 connections on this process's
/// table, after dropping (once per process) the stale test tables among
/// those `list_test_tables` names.
pub(crate) async fn subject<S: ServerStore>(list_test_tables: &'static str) -> Option<Subject> {
    let url = url::<S>()?;
    let config =
        S::from_url(&url).unwrap_or_else(|e| panic!("a valid {}: {e:?}", S::KIND.env_var()));
    let config = S::with_max_connections(S::with_table(config, PROCESS_TABLE.as_str()), 32);
    let store = S::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e:?}", S::NAME));
    drop_stale_tables(&store, list_test_tables).await;
    Some(Subject::with_purger(S::NAME, Arc::new(store)))
}

/// Once per process: drops the test tables older than an hour.
async fn drop_stale_tables<S: ServerStore>(store: &S, list_test_tables: &'static str) {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    let names = store.names(list_test_tables).await.unwrap_or_default();
    for name in stale_tables(names) {
        let _ = store.execute(format!("DROP TABLE IF EXISTS {name}")).await;
    }
}

/// The suite's subject for the outage cases: a store on `down_url` (a
/// closed port) without migrations, built lazily, so building does no I/O.
pub(crate) async fn unreachable_subject<S: ServerStore>(down_url: &str) -> Option<Subject> {
    let config = S::from_url(down_url).expect("a valid URL");
    let config = S::with_operation_timeout(
        S::with_migrations(config, false),
        Duration::from_millis(500),
    );
    let store = S::connect_lazy(config).expect("no I/O when built lazily");
    Some(Subject::new(S::NAME, Arc::new(store)))
}

/// The shared checks that take nothing but the store type, as
/// `#[tokio::test]`s named like the functions of this module: invoked in a
/// test target's `extra` module with the store type.
#[allow(unused_macros)] // the SQLite target does not use it
macro_rules! server_checks {
    ($store:ty) => {
        use $crate::sql_support::server as shared;

        #[tokio::test]
        async fn completed_record_survives_a_restart() {
            shared::completed_record_survives_a_restart::<$store>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn racing_claims_on_32_connections_have_one_winner() {
            shared::racing_claims_on_32_connections_have_one_winner::<$store>().await;
        }

        #[tokio::test]
        async fn purge_deletes_expired_rows_and_keeps_live_ones() {
            shared::purge_deletes_expired_rows_and_keeps_live_ones::<$store>().await;
        }

        #[tokio::test]
        async fn background_purge_deletes_expired_rows() {
            shared::background_purge_deletes_expired_rows::<$store>().await;
        }

        #[tokio::test]
        async fn keys_differing_by_case_or_trailing_space_are_distinct() {
            shared::keys_differing_by_case_or_trailing_space_are_distinct::<$store>().await;
        }
    };
}

#[allow(unused_imports)] // the SQLite target does not use it
pub(crate) use server_checks;

/// The test server's URL, or `None` (the test is skipped) when there is none.
pub(crate) fn url<S: ServerStore>() -> Option<String> {
    match server(S::KIND) {
        Ok(s) => Some(s.url),
        Err(reason) => idem_conformance::skip(S::NAME, &reason),
    }
}

/// A store on `table` with at most `max` connections.
pub(crate) async fn open<S: ServerStore>(url: &str, table: &str, max: u32) -> S {
    let config = S::with_max_connections(S::with_table(S::from_url(url).unwrap(), table), max);
    S::connect(config).await.unwrap()
}

/// Runs `check` on a store with `max` connections in a fresh table, then
/// drops the table; does nothing when there is no server.
async fn on_fresh_table<S: ServerStore, Fut: Future<Output = ()>>(
    max: u32,
    check: impl FnOnce(S) -> Fut,
) {
    let Some(url) = url::<S>() else { return };
    let table = fresh_table();
    let store = open::<S>(&url, &table, max).await;
    check(store.clone()).await;
    store.drop_table(&table).await;
}

/// A completed record is replayed by a new store (pool) on the same table.
pub(crate) async fn completed_record_survives_a_restart<S: ServerStore>() {
    let Some(url) = url::<S>() else { return };
    let table = fresh_table();
    survives_restart(
        || open::<S>(&url, &table, 4),
        |s: S| Box::pin(async move { s.close().await }),
    )
    .await;
    open::<S>(&url, &table, 1).await.drop_table(&table).await;
}

/// The suite's race cases on a pool of 32, which really opens more than 8.
pub(crate) async fn racing_claims_on_32_connections_have_one_winner<S: ServerStore>() {
    on_fresh_table(32, |store: S| async move {
        let subject = Subject::new(S::NAME, Arc::new(store.clone()));
        idem_conformance::cases::racing_claims_have_exactly_one_winner(&subject).await;
        idem_conformance::cases::racing_requests_run_the_handler_once(&subject).await;
        let open_connections = store.pool_size();
        assert!(
            open_connections > 8,
            "the race ran on {open_connections} connections only"
        );
    })
    .await;
}

/// [`purge_deletes_expired_and_keeps_live`] on a fresh table.
pub(crate) async fn purge_deletes_expired_rows_and_keeps_live_ones<S: ServerStore>() {
    on_fresh_table(2, |store: S| async move {
        purge_deletes_expired_and_keeps_live(&store).await;
    })
    .await;
}

/// [`background_purge_runs`] on a store with a 200 ms purge interval.
pub(crate) async fn background_purge_deletes_expired_rows<S: ServerStore>() {
    let Some(url) = url::<S>() else { return };
    let table = fresh_table();
    let config = S::with_purge_interval(
        S::with_table(S::from_url(&url).unwrap(), &table),
        Duration::from_millis(200),
    );
    let store = S::connect(config).await.unwrap();
    background_purge_runs(&store).await;
    store.drop_table(&table).await;
}

/// [`near_identical_keys_are_distinct`] on a fresh table.
pub(crate) async fn keys_differing_by_case_or_trailing_space_are_distinct<S: ServerStore>() {
    on_fresh_table(2, |store: S| async move {
        near_identical_keys_are_distinct(&store).await;
    })
    .await;
}

/// With the server at `down_url` not listening, the connect timeout bounds
/// `connect` and the operation timeout bounds an operation: both fail as
/// transient within 2 s.
pub(crate) async fn timeouts_bound_an_outage<S: ServerStore>(down_url: &str) {
    let config = S::with_operation_timeout(
        S::with_connect_timeout(S::from_url(down_url).unwrap(), Duration::from_millis(300)),
        Duration::from_millis(300),
    );
    let started = Instant::now();
    let err = S::connect(config.clone()).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let store = S::connect_lazy(S::with_migrations(config, false)).unwrap();
    let started = Instant::now();
    let err = store.find(&key("down")).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// Each of `bad` table names makes `connect` (with the config from `url`)
/// fail with [`Error::Config`].
pub(crate) async fn bad_table_name_is_a_config_error<S: ServerStore>(url: &str, bad: &[&str]) {
    bad_table_names_are_config_errors(bad, |table| {
        S::connect(S::with_table(S::from_url(url).unwrap(), &table))
    })
    .await;
}

/// For each of `urls` (carrying [`PASSWORD`], none of which connects): the
/// config's Debug, the connect error, the lazy store's Debug and its first
/// operation's error never show the password; each of `bad_urls` is a
/// config error that does not show it either.
pub(crate) async fn password_never_shows_in_errors_or_debug<S: ServerStore>(
    urls: &[String],
    bad_urls: &[String],
) {
    for url in urls {
        let config = S::with_operation_timeout(
            S::with_connect_timeout(S::from_url(url).unwrap(), Duration::from_secs(3)),
            Duration::from_secs(2),
        );
        assert!(!format!("{config:?}").contains(PASSWORD));
        let err = S::connect(config.clone()).await.unwrap_err();
        assert_hidden(&err, PASSWORD);
        let lazy = S::connect_lazy(S::with_migrations(config, false)).unwrap();
        assert!(!format!("{lazy:?}").contains(PASSWORD));
        let err = lazy.find(&key("pw")).await.unwrap_err();
        assert_hidden(&err, PASSWORD);
    }
    for bad in bad_urls {
        let err = S::from_url(bad).unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        assert_hidden(&err, PASSWORD);
    }
}
