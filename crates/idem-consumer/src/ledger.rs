//! The side effect: a row per processed message in a ledger table with no
//! unique constraint, so that a message processed twice shows as two rows.

use idem_sql::sqlx::{self, SqliteConnection, SqlitePool};

/// Creates the ledger table if it is missing. On purpose it has no key and
/// no unique constraint: nothing but idempotency keeps a duplicate out.
///
/// # Errors
/// The database's error.
pub async fn create(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS ledger (
            idem_key TEXT NOT NULL,
            payload TEXT NOT NULL,
            worker INTEGER NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Writes the row for one message through `conn` (a transaction, in the
/// transactional mode), and returns its row id.
///
/// # Errors
/// The database's error.
pub async fn insert(
    conn: &mut SqliteConnection,
    key: &str,
    payload: &serde_json::Value,
) -> Result<i64, sqlx::Error> {
    let done = sqlx::query("INSERT INTO ledger (idem_key, payload, worker) VALUES (?, ?, ?)")
        .bind(key)
        .bind(payload.to_string())
        .bind(i64::from(std::process::id()))
        .execute(conn)
        .await?;
    Ok(done.last_insert_rowid())
}

/// How many rows the ledger holds.
///
/// # Errors
/// The database's error.
pub async fn rows(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM ledger")
        .fetch_one(pool)
        .await
}

/// How many distinct keys the ledger holds.
///
/// # Errors
/// The database's error.
pub async fn keys(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(DISTINCT idem_key) FROM ledger")
        .fetch_one(pool)
        .await
}
