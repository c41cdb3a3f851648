//! The SQLite table and the statements run on it.

use std::sync::Arc;

use crate::dialect::Queries;

/// Every statement on table `t` (which passed `validate_table`). Expiry is
/// an `INTEGER` of milliseconds since the epoch, by this process's clock,
/// bound into every statement that compares it.
pub(crate) fn queries(t: &str) -> Queries {
    let s = |sql: String| -> Arc<str> { sql.into() };
    Queries {
        create: vec![
            s(format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 idem_key TEXT NOT NULL PRIMARY KEY, \
                 value BLOB NOT NULL, \
                 token BLOB, \
                 expires_at INTEGER NOT NULL)"
            )),
            s(format!(
                "CREATE INDEX IF NOT EXISTS {t}_expires_at_idx ON {t} (expires_at)"
            )),
        ],
        find: s(format!(
            "SELECT value FROM {t} WHERE idem_key = ?1 AND expires_at > ?2"
        )),
        exists: s(format!(
            "SELECT 1 FROM {t} WHERE idem_key = ?1 AND expires_at > ?2"
        )),
        store: s(format!(
            "INSERT INTO {t} (idem_key, value, token, expires_at) VALUES (?1, ?2, NULL, ?3) \
             ON CONFLICT (idem_key) DO UPDATE SET \
             value = excluded.value, token = NULL, expires_at = excluded.expires_at"
        )),
        remove: s(format!(
            "DELETE FROM {t} WHERE idem_key = ?1 AND expires_at > ?2"
        )),
        // One statement: insert, or on conflict take the row over only if
        // it expired (else rewrite it unchanged), and return what is there.
        // The caller won if the returned token is its own.
        claim: s(format!(
            "INSERT INTO {t} (idem_key, value, token, expires_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (idem_key) DO UPDATE SET \
             value = CASE WHEN expires_at <= ?5 THEN excluded.value ELSE value END, \
             token = CASE WHEN expires_at <= ?5 THEN excluded.token ELSE token END, \
             expires_at = CASE WHEN expires_at <= ?5 THEN excluded.expires_at ELSE expires_at END \
             RETURNING value, token"
        )),
        extend: s(format!(
            "UPDATE {t} SET expires_at = ?1 \
             WHERE idem_key = ?2 AND token = ?3 AND expires_at > ?4"
        )),
        complete: s(format!(
            "UPDATE {t} SET value = ?1, token = NULL, expires_at = ?2 \
             WHERE idem_key = ?3 AND token = ?4 AND expires_at > ?5"
        )),
        release: s(format!(
            "DELETE FROM {t} WHERE idem_key = ?1 AND token = ?2 AND expires_at > ?3"
        )),
        purge: s(format!("DELETE FROM {t} WHERE expires_at <= ?1")),
    }
}
