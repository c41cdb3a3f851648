//! The payments table in SQLite.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{Row, SqliteConnection};

use crate::payment::{NewPayment, Payment};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY NOT NULL,
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (scope, idempotency_key)
)";

const COLUMNS: &str = "id, amount, currency, recipient, status, idempotency_key, created_at";

/// What [`Payments::create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new payment was made.
    New(Payment),
    /// A payment with this scope and key already existed (the idempotency
    /// record had expired or was lost): the table's unique constraint kept it
    /// from being made twice. This is it.
    Existing(Payment),
}

/// The payments, in a SQLite file.
#[derive(Debug, Clone)]
pub struct Payments {
    pool: SqlitePool,
}

impl Payments {
    /// Opens (and creates when missing) the database file at `path`, in WAL
    /// mode, and creates the table.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run() -> Result<(), sqlx::Error> {
    /// let payments = idem_demo::db::Payments::open("idem-demo.db".as_ref()).await?;
    /// # let _ = payments; Ok(()) }
    /// ```
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Self::on(pool).await
    }

    /// The payments on an open pool (the idempotency store's, in the
    /// transactional mode), creating the table when missing.
    pub async fn on(pool: SqlitePool) -> Result<Self, sqlx::Error> {
        sqlx::query(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }

    /// Makes a payment for `(scope, key)`, unless one exists already.
    pub async fn create(
        &self,
        scope: &str,
        key: &str,
        payment: &NewPayment,
    ) -> Result<Created, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Self::create_in(&mut conn, scope, key, payment).await
    }

    /// [`create`](Self::create) on `conn`: one of the pool's, or a
    /// transaction's (the request's `IdempotentTx` in the transactional
    /// mode).
    pub async fn create_in(
        conn: &mut SqliteConnection,
        scope: &str,
        key: &str,
        payment: &NewPayment,
    ) -> Result<Created, sqlx::Error> {
        let id = format!("pay_{}", uuid::Uuid::new_v4().simple());
        let sql = format!(
            "INSERT INTO payments (id, scope, idempotency_key, amount, currency, recipient, status, created_at)
             VALUES (?, ?, ?, ?, ?, ?, 'succeeded', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             ON CONFLICT (scope, idempotency_key) DO NOTHING
             RETURNING {COLUMNS}"
        );
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&id)
            .bind(scope)
            .bind(key)
            .bind(payment.amount.to_string())
            .bind(&payment.currency)
            .bind(&payment.recipient)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = inserted {
            return Ok(Created::New(decode(&row)?));
        }
        let sql = format!("SELECT {COLUMNS} FROM payments WHERE scope = ? AND idempotency_key = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope)
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Created::Existing(decode(&row)?))
    }

    /// The payment `id` in `scope`.
    pub async fn get(&self, scope: &str, id: &str) -> Result<Option<Payment>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM payments WHERE scope = ? AND id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// The payments in `scope`, oldest first (at most 1000).
    pub async fn list(&self, scope: &str) -> Result<Vec<Payment>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM payments WHERE scope = ? ORDER BY created_at, id LIMIT 1000"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode).collect()
    }

    /// How many payments exist, in every scope.
    pub async fn count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM payments")
            .fetch_one(&self.pool)
            .await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }
}

fn decode(row: &SqliteRow) -> Result<Payment, sqlx::Error> {
    let amount: String = row.try_get("amount")?;
    Ok(Payment {
        id: row.try_get("id")?,
        amount: Decimal::from_str(&amount).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        currency: row.try_get("currency")?,
        recipient: row.try_get("recipient")?,
        status: row.try_get("status")?,
        idempotency_key: row.try_get("idempotency_key")?,
        created_at: row.try_get("created_at")?,
    })
}
