//! What the PostgreSQL and MySQL tests of this crate share.

/// A table name of this test run's own (`PREFIX_PID_NANOS`), on a server
/// other tests share.
pub(crate) fn own_table(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}
