//! What the SQL test targets share: per-process table names, and dropping
//! tables that earlier runs left behind.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Test tables start with this and carry their creation time in seconds.
pub(crate) const TABLE_PREFIX: &str = "idem_t_";

/// Tables left by runs older than this are dropped by [`stale_tables`]'s users.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(3600);

/// A table name no other run uses: `idem_t_<unix seconds>_<random>`.
pub(crate) fn fresh_table() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{TABLE_PREFIX}{secs}_{}", &random[..12])
}

/// A fresh table whose statements the recorder in [`statements`] keeps.
pub(crate) fn counting_table() -> String {
    format!("{}{COUNTED}", fresh_table())
}

/// The suffix of the tables whose statements are recorded.
pub(crate) const COUNTED: &str = "_cnt";

/// The table this test process runs the conformance suite in, created on
/// first use by the store's migrations.
pub(crate) static PROCESS_TABLE: LazyLock<String> = LazyLock::new(fresh_table);

/// Of `names`, those made by [`fresh_table`] more than [`STALE_AFTER`] ago.
pub(crate) fn stale_tables(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    names
        .into_iter()
        .filter(|name| {
            name.strip_prefix(TABLE_PREFIX)
                .and_then(|rest| rest.split('_').next())
                .and_then(|secs| secs.parse::<u64>().ok())
                .is_some_and(|secs| secs + STALE_AFTER.as_secs() < now)
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .collect()
}

/// A loopback port nothing listens on: connecting is refused at once.
pub(crate) const CLOSED_PORT: u16 = 1;

/// Returns once a handler counted in `runs` has started: its key is claimed,
/// so a duplicate sent now meets the claim (a fixed head start is not
/// enough on a loaded machine).
pub(crate) async fn first_started(runs: &std::sync::atomic::AtomicUsize) {
    while runs.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) mod extra;
pub(crate) mod mssql_tx;
pub(crate) mod pg_proxy;
pub(crate) mod server;
pub(crate) mod statements;
pub(crate) mod tx;
