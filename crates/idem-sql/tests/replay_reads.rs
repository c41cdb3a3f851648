//! A claim that meets a live record writes nothing (the trait's contract):
//! on PostgreSQL the row keeps its version (`xmin`), so a replay takes no
//! row lock, writes no WAL and commits nothing to flush.

#![cfg(feature = "postgres")]

use std::time::Duration;

use idem_core::{Claim, IdempotencyStore, StoreKey};
use idem_sql::{PostgresConfig, PostgresStore};

mod support;

/// The transaction that wrote the row's current version.
async fn version(store: &PostgresStore, table: &str, key: &StoreKey) -> String {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT xmin::text FROM {table} WHERE idem_key = $1"
    )))
    .bind(key.as_str().as_bytes())
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_claim_on_a_live_record_leaves_the_row_as_it_is() {
    let Ok(url) = std::env::var("IDEM_TEST_POSTGRES_URL") else {
        let reason = "IDEM_TEST_POSTGRES_URL is not set";
        return idem_conformance::skip("postgres", reason).unwrap_or(());
    };
    let table = support::own_table("replay_reads");
    let config = PostgresConfig::from_url(&url).unwrap().with_table(&table);
    let store = PostgresStore::connect(config).await.unwrap();
    let key = StoreKey::parse("replay-reads:1").unwrap();
    let lease = Duration::from_secs(30);

    let Claim::Acquired(token) = store.claim(&key, "pending".into(), lease).await.unwrap() else {
        panic!("a fresh key was not acquired");
    };
    // In progress: a duplicate meets the pending record and writes nothing.
    let before = version(&store, &table, &key).await;
    let met = store.claim(&key, "other".into(), lease).await.unwrap();
    assert!(matches!(met, Claim::Existing(ref b) if b == "pending"));
    assert_eq!(
        version(&store, &table, &key).await,
        before,
        "a duplicate rewrote the row"
    );

    // Completed: a replay reads the record and writes nothing.
    let ttl = Duration::from_secs(60);
    store
        .complete(&key, &token, "done".into(), ttl)
        .await
        .unwrap();
    let before = version(&store, &table, &key).await;
    for _ in 0..3 {
        let met = store.claim(&key, "again".into(), lease).await.unwrap();
        assert!(matches!(met, Claim::Existing(ref b) if b == "done"));
    }
    assert_eq!(
        version(&store, &table, &key).await,
        before,
        "a replay rewrote the row"
    );

    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(store.pool())
        .await
        .unwrap();
}
