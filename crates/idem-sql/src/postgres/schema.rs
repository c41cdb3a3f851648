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
        // One statement: insert, or on conflict take the row over only if
        // it expired (else rewrite it unchanged, under the row lock), and
        // return what is there. The caller won if the token is its own.
        claim: s(format!(
            "INSERT INTO {t} (idem_key, value, token, expires_at) VALUES ($1, $2, $3, {}) \
             ON CONFLICT (idem_key) DO UPDATE SET \
             value = CASE WHEN {t}.expires_at <= now() THEN excluded.value ELSE {t}.value END, \
             token = CASE WHEN {t}.expires_at <= now() THEN excluded.token ELSE {t}.token END, \
             expires_at = CASE WHEN {t}.expires_at <= now() \
             THEN excluded.expires_at ELSE {t}.expires_at END \
             RETURNING value, token",
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
