//! The payments SQL, written once: the statements are the same on each
//! database but for a few fragments, which each [`Dialect`] gives.
//!
//! Amounts are exact decimals (`NUMERIC(11,2)` on the servers; SQLite has
//! no exact decimal type, so there a decimal string); ids are made by the
//! demo (`pay_` and a UUID); `created_at` is the database's clock, in UTC,
//! and reads back as RFC 3339 text to the millisecond.

use std::sync::LazyLock;

use sqlx::Sqlite;

/// One database's fragments of the payments SQL.
pub(crate) trait Dialect: sqlx::Database {
    /// `CREATE TABLE IF NOT EXISTS payments (...)`.
    const SCHEMA: &'static str;
    /// The bound amount (a decimal string) as the column's type.
    const AMOUNT_IN: &'static str;
    /// The amount column as a decimal string.
    const AMOUNT_OUT: &'static str;
    /// The current time as the column's type.
    const NOW: &'static str;
    /// The `created_at` column as RFC 3339 text in UTC.
    const CREATED_OUT: &'static str;
    /// What an insert does when `(scope, idempotency_key)` exists: nothing.
    const ON_CONFLICT: &'static str;
    /// Whether placeholders are numbered (`$1`), not `?`.
    const NUMBERED: bool = false;

    /// The statements, built once.
    fn queries() -> &'static Queries;
}

/// The statements on the payments table, in one dialect.
#[derive(Debug)]
pub(crate) struct Queries {
    /// Binds id, scope, key, amount, currency, recipient.
    pub(crate) insert: String,
    /// Binds scope, key.
    pub(crate) by_key: String,
    /// Binds scope, id.
    pub(crate) by_id: String,
    /// Binds scope.
    pub(crate) list: String,
}

impl Queries {
    fn new<D: Dialect>() -> Self {
        let columns = format!(
            "id, {} AS amount, currency, recipient, status, idempotency_key, {} AS created_at",
            D::AMOUNT_OUT,
            D::CREATED_OUT
        );
        let sql = |text: String| if D::NUMBERED { numbered(&text) } else { text };
        Self {
            insert: sql(format!(
                "INSERT INTO payments (id, scope, idempotency_key, amount, currency, recipient, status, created_at) \
                 VALUES (?, ?, ?, {}, ?, ?, 'succeeded', {}) {}",
                D::AMOUNT_IN,
                D::NOW,
                D::ON_CONFLICT
            )),
            by_key: sql(format!(
                "SELECT {columns} FROM payments WHERE scope = ? AND idempotency_key = ?"
            )),
            by_id: sql(format!(
                "SELECT {columns} FROM payments WHERE scope = ? AND id = ?"
            )),
            list: sql(format!(
                "SELECT {columns} FROM payments WHERE scope = ? \
                 ORDER BY payments.created_at, payments.id LIMIT 1000"
            )),
        }
    }
}

/// `?` placeholders as `$1`, `$2`, ... (no statement here has a `?` in a
/// literal).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Stamps `Dialect::queries` for a database: the statements built on first
/// use.
macro_rules! queries {
    ($db:ty) => {
        fn queries() -> &'static Queries {
            static QUERIES: LazyLock<Queries> = LazyLock::new(Queries::new::<$db>);
            &QUERIES
        }
    };
}

/// The schema the demo has always had: amounts and times as text.
impl Dialect for Sqlite {
    const SCHEMA: &'static str = "CREATE TABLE IF NOT EXISTS payments (
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
    const AMOUNT_IN: &'static str = "?";
    const AMOUNT_OUT: &'static str = "amount";
    const NOW: &'static str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
    const CREATED_OUT: &'static str = "created_at";
    const ON_CONFLICT: &'static str = "ON CONFLICT (scope, idempotency_key) DO NOTHING";
    queries!(Sqlite);
}

#[cfg(feature = "postgres")]
impl Dialect for sqlx::Postgres {
    const SCHEMA: &'static str = "CREATE TABLE IF NOT EXISTS payments (
        id VARCHAR(64) PRIMARY KEY,
        scope VARCHAR(64) NOT NULL,
        idempotency_key VARCHAR(255) NOT NULL,
        amount NUMERIC(11, 2) NOT NULL,
        currency CHAR(3) NOT NULL,
        recipient VARCHAR(254) NOT NULL,
        status VARCHAR(16) NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        UNIQUE (scope, idempotency_key)
    )";
    const AMOUNT_IN: &'static str = "CAST(? AS NUMERIC(11, 2))";
    const AMOUNT_OUT: &'static str = "CAST(amount AS TEXT)";
    const NOW: &'static str = "clock_timestamp()";
    const CREATED_OUT: &'static str =
        r#"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#;
    const ON_CONFLICT: &'static str = "ON CONFLICT (scope, idempotency_key) DO NOTHING";
    const NUMBERED: bool = true;
    queries!(sqlx::Postgres);
}

/// Ids, scopes and keys compare byte for byte (`ascii_bin`): MySQL's
/// default collation would take `abc` and `ABC` for one key.
#[cfg(feature = "mysql")]
impl Dialect for sqlx::MySql {
    const SCHEMA: &'static str = "CREATE TABLE IF NOT EXISTS payments (
        id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
        scope VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        idempotency_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        amount DECIMAL(11, 2) NOT NULL,
        currency CHAR(3) NOT NULL,
        recipient VARCHAR(254) NOT NULL,
        status VARCHAR(16) NOT NULL,
        created_at DATETIME(3) NOT NULL,
        UNIQUE (scope, idempotency_key)
    ) CHARACTER SET utf8mb4";
    const AMOUNT_IN: &'static str = "CAST(? AS DECIMAL(11, 2))";
    const AMOUNT_OUT: &'static str = "CAST(amount AS CHAR)";
    const NOW: &'static str = "UTC_TIMESTAMP(3)";
    const CREATED_OUT: &'static str =
        "CONCAT(LEFT(DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%f'), 23), 'Z')";
    const ON_CONFLICT: &'static str = "ON DUPLICATE KEY UPDATE id = id";
    queries!(sqlx::MySql);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered("a = ? AND b = ? OR c = CAST(? AS X)"),
            "a = $1 AND b = $2 OR c = CAST($3 AS X)"
        );
    }

    #[test]
    fn the_insert_has_one_placeholder_per_bound_value() {
        let q = <Sqlite as Dialect>::queries();
        assert_eq!(q.insert.matches('?').count(), 6, "{}", q.insert);
        assert!(q.insert.contains("ON CONFLICT"));
        #[cfg(feature = "postgres")]
        {
            let q = <sqlx::Postgres as Dialect>::queries();
            assert!(
                q.insert.contains("CAST($4 AS NUMERIC(11, 2)), $5, $6"),
                "{}",
                q.insert
            );
            assert!(!q.list.contains('?'), "{}", q.list);
        }
    }
}
