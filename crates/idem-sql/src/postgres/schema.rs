//! The PostgreSQL table and the statements run on it.

use std::sync::Arc;

use crate::dialect::Queries;

/// `now()` plus a bound number of microseconds.
const LATER: &str = "now() + ${} * interval '1 microsecond'";

fn later(param: u8) -> String {
    LATER.replace("{}", &format!("{param}::float8"))
}

/// Every statement on table `t` (which passed `validate_table`).
///
/// Keys are `BYTEA`, compared byte for byte (no collation, no padding).
/// Expiry is `TIMESTAMPTZ`, always computed and compared by the server's
/// `now()`; TTLs are bound in microseconds.
pub(crate) fn queries(t: &str) -> Queries {
    let s = |sql: String| -> Arc<str> { sql.into() };
    Queries {
        create: vec![
            s(format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 idem_key BYTEA NOT NULL PRIMARY KEY, \
                 value BYTEA NOT NULL, \
                 token BYTEA, \
                 expires_at TIMESTAMPTZ NOT NULL)"
            )),
            s(format!(
                "CREATE INDEX IF NOT EXISTS {t}_expires_at_idx ON {t} (expires_at)"
            )),
        ],
        find: s(format!(
            "SELECT value FROM {t} WHERE idem_key = $1 AND expires_at > now()"
        )),
        exists: s(format!(
            "SELECT 1 FROM {t} WHERE idem_key = $1 AND expires_at > now()"
        )),
        store: s(format!(
            "INSERT INTO {t} (idem_key, value, token, expires_at) VALUES ($1, $2, NULL, {}) \
             ON CONFLICT (idem_key) DO UPDATE SET \
             value = excluded.value, token = NULL, expires_at = excluded.expires_at",
            later(3)
        )),
        remove: s(format!(
            "DELETE FROM {t} WHERE idem_key = $1 AND expires_at > now()"
        )),
        // One statement, which writes only when there is no live record:
        // `live` reads the record in the statement's snapshot; `taken`
        // inserts, or takes an expired row over, only when `live` is
        // empty. A replay is then a read (no row lock, no WAL, no commit
        // to flush). When another transaction committed a live row after
        // the snapshot, the conflict's `WHERE` leaves it alone and the
        // statement returns nothing: the caller runs it again. The caller
        // won if the token returned is its own.
        claim: s(format!(
            "WITH live AS (\
             SELECT value, token FROM {t} WHERE idem_key = $1 AND expires_at > now()), \
             taken AS (\
             INSERT INTO {t} (idem_key, value, token, expires_at) \
             SELECT $1::bytea, $2::bytea, $3::bytea, {} \
             WHERE NOT EXISTS (SELECT 1 FROM live) \
             ON CONFLICT (idem_key) DO UPDATE SET \
             value = excluded.value, token = excluded.token, expires_at = excluded.expires_at \
             WHERE {t}.expires_at <= now() \
             RETURNING value, token) \
             SELECT value, token FROM taken UNION ALL SELECT value, token FROM live",
            later(4)
        )),
        extend: s(format!(
            "UPDATE {t} SET expires_at = {} \
             WHERE idem_key = $2 AND token = $3 AND expires_at > now()",
            later(1)
        )),
        complete: s(format!(
            "UPDATE {t} SET value = $1, token = NULL, expires_at = {} \
             WHERE idem_key = $3 AND token = $4 AND expires_at > now()",
            later(2)
        )),
        release: s(format!(
            "DELETE FROM {t} WHERE idem_key = $1 AND token = $2 AND expires_at > now()"
        )),
        purge: s(format!("DELETE FROM {t} WHERE expires_at <= now()")),
    }
}
