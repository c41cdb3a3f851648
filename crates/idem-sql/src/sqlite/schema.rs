//! The SQLite table and the statements run on it.

use std::sync::Arc;

/// Every statement, built once for the configured (validated) table name.
#[derive(Debug)]
pub(crate) struct Queries {
    pub(crate) create: [Arc<str>; 2],
    pub(crate) find: Arc<str>,
    pub(crate) exists: Arc<str>,
    pub(crate) store: Arc<str>,
    pub(crate) remove: Arc<str>,
    pub(crate) claim: Arc<str>,
    pub(crate) complete: Arc<str>,
    pub(crate) release: Arc<str>,
    pub(crate) purge: Arc<str>,
}

impl Queries {
    /// `t` must have passed `validate_table`.
    pub(crate) fn new(t: &str) -> Self {
        let s = |sql: String| -> Arc<str> { sql.into() };
        Self {
            create: [
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
}
