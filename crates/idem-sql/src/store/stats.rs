//! Counting the records, for operators ([`IdempotencyStore::stats`]),
//! written once for the three databases.
//!
//! [`IdempotencyStore::stats`]: idem_core::IdempotencyStore::stats

use idem_core::{KeySpace, Result, StoreStats};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{SqlStore, err, statement};
use crate::dialect::Dialect;
use crate::error::within;

/// The statement counting table `t`'s records by state, grouped by the
/// first `prefix_len` characters of their key (a number, never text from
/// outside, goes into the SQL); `clock` is the dialect's
/// [`Dialect::CLOCK`].
fn count(t: &str, clock: &str, prefix_len: usize) -> String {
    format!(
        "SELECT substr(idem_key, 1, {prefix_len}), \
         COUNT(CASE WHEN expires_at > {clock} AND token IS NOT NULL THEN 1 END), \
         COUNT(CASE WHEN expires_at > {clock} AND token IS NULL THEN 1 END), \
         COUNT(CASE WHEN expires_at <= {clock} THEN 1 END) \
         FROM {t} GROUP BY 1"
    )
}

impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    <D::Db as Database>::Arguments: IntoArguments<D::Db>,
    for<'a> &'a [u8]: Encode<'a, D::Db> + Type<D::Db>,
    for<'a> &'a str: Encode<'a, D::Db> + Type<D::Db>,
    for<'r> Vec<u8>: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> i64: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
{
    /// Counts the records under `space`'s prefix: live ones by state, and
    /// the expired ones left for a purge. One statement, a scan of the
    /// table (O(n)); like a purge, only getting its connection is bounded
    /// by the operation timeout, as on a large table the scan may take
    /// longer than an operation.
    pub(crate) async fn stats(&self, space: &KeySpace) -> Result<StoreStats> {
        let s = &self.shared;
        s.ready().await?;
        let limit = self.settings().operation_timeout;
        let mut conn = within(D::BACKEND, limit, async {
            s.pool.acquire().await.map_err(err::<D>)
        })
        .await?;
        let prefix = space.prefix();
        let sql: std::sync::Arc<str> = count(&self.settings().table, D::CLOCK, prefix.len()).into();
        let rows = D::bind_now(statement::<D>(&sql), D::now())
            .fetch_all(&mut *conn)
            .await
            .map_err(err::<D>)?;
        let mut counts = [0u64; 3];
        for row in rows {
            let group: Vec<u8> = row.try_get(0).map_err(err::<D>)?;
            if group != prefix.as_bytes() {
                continue;
            }
            for (i, count) in counts.iter_mut().enumerate() {
                let n: i64 = row.try_get(i + 1).map_err(err::<D>)?;
                *count += u64::try_from(n).unwrap_or(0);
            }
        }
        let [in_progress, completed, expired] = counts;
        Ok(StoreStats::new(in_progress, completed).with_expired(expired))
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn the_prefix_length_is_the_only_thing_spliced_in() {
        let sql = count("idem_records", "now()", 12);
        assert!(sql.starts_with("SELECT substr(idem_key, 1, 12),"), "{sql}");
        assert!(sql.ends_with("FROM idem_records GROUP BY 1"), "{sql}");
        assert_eq!(sql.matches("now()").count(), 3);
    }
}
