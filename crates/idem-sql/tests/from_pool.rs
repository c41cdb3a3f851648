//! A SQLite store on the application's own pool: the records share the
//! application's connections (no second pool), the store conforms, and
//! the transactional mode commits the application's writes with them.

use std::sync::Arc;

use idem_conformance::{Subject, cases};
use idem_core::{Completion, Fingerprint, IdempotencyStore, Outcome, StoreKey, StoredResponse};
use idem_sql::{SqliteConfig, SqliteStore};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

async fn app_pool(dir: &tempfile::TempDir, max: u32) -> sqlx::SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("app.db"))
        .create_if_missing(true);
    SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(options)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_on_the_application_pool_conforms_and_shares_it() {
    let dir = tempfile::tempdir().unwrap();
    let pool = app_pool(&dir, 3).await;
    sqlx::query("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    let config = SqliteConfig::memory().with_table("app_idem");
    let store = SqliteStore::from_pool(pool.clone(), config).await.unwrap();
    assert_eq!(store.backend(), "sqlite");

    // The very pool: the store's table is in the application's database.
    assert!(store.pool().size() <= 3);
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(tables.contains(&"app_idem".to_owned()), "{tables:?}");

    let subject = Subject::with_purger("sqlite-from-pool", Arc::new(store.clone()));
    for case in cases::ALL.iter().chain(cases::PURGE) {
        eprintln!("case {}", case.name());
        case.run(&subject).await;
    }
    assert_eq!(store.pool().options().get_max_connections(), 3);

    // The transactional mode on the application's pool: the handler's
    // write commits with the stored response.
    let engine = store.transactional();
    let key = StoreKey::parse("orders:1").unwrap();
    let fp = Fingerprint::of_request("POST", "/orders", b"{}");
    let outcome = engine
        .execute(&key, fp, |mut tx| async move {
            sqlx::query("INSERT INTO orders (id) VALUES ('o-1')")
                .execute(&mut *tx)
                .await
                .unwrap();
            let kept = StoredResponse {
                status: 201,
                ..Default::default()
            };
            ((), Completion::Keep(kept))
        })
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Executed(())), "{outcome:?}");
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(orders, 1);
    assert!(store.exists(&key).await.unwrap());
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
mod support;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use support::own_table;

/// The conformance suite, purge included, on `store`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn conforms(name: &'static str, store: impl idem_core::PurgeExpired + 'static) {
    let subject = Subject::with_purger(name, Arc::new(store));
    for case in cases::ALL.iter().chain(cases::PURGE) {
        eprintln!("case {}", case.name());
        case.run(&subject).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_store_on_the_application_pool_conforms_and_shares_it() {
    use idem_sql::{PostgresConfig, PostgresStore};
    let Ok(url) = std::env::var("IDEM_TEST_POSTGRES_URL") else {
        let reason = "IDEM_TEST_POSTGRES_URL is not set";
        return idem_conformance::skip("postgres", reason).unwrap_or(());
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    let table = own_table("app_idem");
    let config = PostgresConfig::from_url(&url).unwrap().with_table(&table);
    let store = PostgresStore::from_pool(pool.clone(), config)
        .await
        .unwrap();
    assert_eq!(store.backend(), "postgres");
    // The very pool: the store's table is in the application's database.
    let found: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = $1")
            .bind(&table)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(found, 1, "{table} is not in the application's database");
    assert_eq!(store.pool().options().get_max_connections(), 4);
    conforms("postgres-from-pool", store).await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mysql_store_on_the_application_pool_conforms_and_shares_it() {
    use idem_sql::{MySqlConfig, MySqlStore};
    let Ok(url) = std::env::var("IDEM_TEST_MYSQL_URL") else {
        let reason = "IDEM_TEST_MYSQL_URL is not set";
        return idem_conformance::skip("mysql", reason).unwrap_or(());
    };
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    let table = own_table("app_idem");
    let config = MySqlConfig::from_url(&url).unwrap().with_table(&table);
    let store = MySqlStore::from_pool(pool.clone(), config).await.unwrap();
    assert_eq!(store.backend(), "mysql");
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(&table)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(found, 1, "{table} is not in the application's database");
    assert_eq!(store.pool().options().get_max_connections(), 4);
    conforms("mysql-from-pool", store).await;
}
