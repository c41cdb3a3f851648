//! The MySQL table and the statements run on it.

use std::sync::Arc;

use idem_core::MAX_STORE_KEY_LEN;

use crate::dialect::Queries;

const NOW: &str = "UTC_TIMESTAMP(6)";
const LATER: &str = "UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND";

/// Every statement on table `t` (which passed `validate_table`).
///
/// Keys are `VARBINARY`, compared byte for byte: no collation folds case or
/// drops trailing spaces, so `k`, `K` and `k ` are three keys. Expiry is
/// `DATETIME(6)` in UTC, computed and compared by the server's
/// `UTC_TIMESTAMP(6)` (independent of the session's time zone); TTLs are
/// bound in microseconds.
pub(crate) fn queries(t: &str) -> Queries {
    let s = |sql: String| -> Arc<str> { sql.into() };
    let expired = format!("expires_at <= {NOW}");
    Queries {
        // MySQL has no CREATE INDEX IF NOT EXISTS: the index is part of
        // the table, so one idempotent statement makes both.
        create: vec![s(format!(
            "CREATE TABLE IF NOT EXISTS {t} (\
             idem_key VARBINARY({MAX_STORE_KEY_LEN}) NOT NULL PRIMARY KEY, \
             value LONGBLOB NOT NULL, \
             token BINARY(16) NULL, \
             expires_at DATETIME(6) NOT NULL, \
             INDEX {t}_expires_at_idx (expires_at)) ENGINE=InnoDB"
        ))],
        find: s(format!(
            "SELECT value FROM {t} WHERE idem_key = ? AND expires_at > {NOW}"
        )),
        exists: s(format!(
            "SELECT 1 FROM {t} WHERE idem_key = ? AND expires_at > {NOW}"
        )),
        store: s(format!(
            "INSERT INTO {t} (idem_key, value, token, expires_at) VALUES (?, ?, NULL, {LATER}) \
             ON DUPLICATE KEY UPDATE \
             value = VALUES(value), token = NULL, expires_at = VALUES(expires_at)"
        )),
        remove: s(format!(
            "DELETE FROM {t} WHERE idem_key = ? AND expires_at > {NOW}"
        )),
        // One statement decides: insert, or take an expired row over, or
        // leave a live row alone and flag it with LAST_INSERT_ID(1), which
        // the OK packet reports (MySQL has no RETURNING). Assignments run
        // left to right on the updated row, so expires_at goes last.
        claim: s(format!(
            "INSERT INTO {t} (idem_key, value, token, expires_at) VALUES (?, ?, ?, {LATER}) \
             ON DUPLICATE KEY UPDATE \
             value = IF({expired}, VALUES(value), value), \
             token = IF({expired}, VALUES(token), IF(LAST_INSERT_ID(1), token, token)), \
             expires_at = IF({expired}, VALUES(expires_at), expires_at)"
        )),
        extend: s(format!(
            "UPDATE {t} SET expires_at = {LATER} \
             WHERE idem_key = ? AND token = ? AND expires_at > {NOW}"
        )),
        complete: s(format!(
            "UPDATE {t} SET value = ?, token = NULL, expires_at = {LATER} \
             WHERE idem_key = ? AND token = ? AND expires_at > {NOW}"
        )),
        release: s(format!(
            "DELETE FROM {t} WHERE idem_key = ? AND token = ? AND expires_at > {NOW}"
        )),
        purge: s(format!("DELETE FROM {t} WHERE {expired}")),
    }
}
