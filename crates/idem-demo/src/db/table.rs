//! The payments table on one database: the same code for each, over its
//! [`Dialect`]'s statements.

use std::str::FromStr;

use rust_decimal::Decimal;
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type,
};

use super::Created;
use super::sql::Dialect;
use crate::payment::{NewPayment, Payment};

/// The payments table in a database of type `D`, on its pool.
#[derive(Debug)]
pub(crate) struct Table<D: Database>(pub(crate) Pool<D>);

impl<D: Database> Clone for Table<D> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<D> Table<D>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'a> &'a str: Encode<'a, D> + Type<D>,
    for<'r> String: Decode<'r, D> + Type<D>,
    for<'r> i64: Decode<'r, D> + Type<D>,
    for<'a> &'a str: ColumnIndex<D::Row>,
{
    /// The table on `pool`, created when missing.
    pub(crate) async fn on(pool: Pool<D>) -> Result<Self, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        sqlx::query(D::SCHEMA).execute(&mut *conn).await?;
        drop(conn);
        Ok(Self(pool))
    }

    /// Makes a payment for `(scope, key)`, unless one exists.
    pub(crate) async fn create(
        &self,
        scope: &str,
        key: &str,
        payment: &NewPayment,
    ) -> Result<Created, sqlx::Error> {
        let mut conn = self.0.acquire().await?;
        Self::create_in(&mut conn, scope, key, payment).await
    }

    /// [`create`](Self::create) on `conn` (a transaction's, say).
    pub(crate) async fn create_in(
        conn: &mut D::Connection,
        scope: &str,
        key: &str,
        payment: &NewPayment,
    ) -> Result<Created, sqlx::Error> {
        let q = D::queries();
        let id = format!("pay_{}", uuid::Uuid::new_v4().simple());
        let amount = payment.amount.to_string();
        sqlx::query(AssertSqlSafe(q.insert.as_str()))
            .bind(id.as_str())
            .bind(scope)
            .bind(key)
            .bind(amount.as_str())
            .bind(payment.currency.as_str())
            .bind(payment.recipient.as_str())
            .execute(&mut *conn)
            .await?;
        // The insert did nothing when the key had a payment: the id tells.
        let row = sqlx::query(AssertSqlSafe(q.by_key.as_str()))
            .bind(scope)
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        let found = decode(&row)?;
        Ok(if found.id == id {
            Created::New(found)
        } else {
            Created::Existing(found)
        })
    }

    /// The payment `id` in `scope`.
    pub(crate) async fn get(&self, scope: &str, id: &str) -> Result<Option<Payment>, sqlx::Error> {
        let mut conn = self.0.acquire().await?;
        let row = sqlx::query(AssertSqlSafe(D::queries().by_id.as_str()))
            .bind(scope)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// The payments in `scope`, oldest first (at most 1000).
    pub(crate) async fn list(&self, scope: &str) -> Result<Vec<Payment>, sqlx::Error> {
        let mut conn = self.0.acquire().await?;
        let rows = sqlx::query(AssertSqlSafe(D::queries().list.as_str()))
            .bind(scope)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(decode).collect()
    }

    /// How many payments exist, in every scope.
    pub(crate) async fn count(&self) -> Result<i64, sqlx::Error> {
        let mut conn = self.0.acquire().await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM payments")
            .fetch_one(&mut *conn)
            .await?;
        row.try_get("n")
    }

    /// Whether the database answers.
    pub(crate) async fn ping(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.0.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *conn).await.map(drop)
    }
}

fn decode<R: Row>(row: &R) -> Result<Payment, sqlx::Error>
where
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'a> &'a str: ColumnIndex<R>,
{
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
