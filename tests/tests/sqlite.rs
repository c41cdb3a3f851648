//! The conformance suite on SQLite: a file database (WAL, several
//! connections) and `sqlite::memory:`.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use idem_conformance::Subject;
use idem_sql::{SqliteConfig, SqliteStore};

/// One database file per test process, in a fresh temporary directory, and
/// one table name per process: earlier runs' files cannot be seen.
static FILE: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = tempfile::Builder::new()
        .prefix("idem-sqlite-conformance-")
        .tempdir()
        .expect("a temporary directory")
        .keep();
    dir.join("idem.db")
});
static TABLE: LazyLock<String> =
    LazyLock::new(|| format!("idem_conf_{}", uuid::Uuid::new_v4().simple()));

async fn sqlite_file() -> Option<Subject> {
    let config = SqliteConfig::file(&*FILE)
        .with_table(TABLE.as_str())
        .with_max_connections(8);
    let store = SqliteStore::connect(config)
        .await
        .expect("open the SQLite file");
    Some(Subject::new("sqlite", Arc::new(store)))
}

async fn sqlite_memory() -> Option<Subject> {
    let store = SqliteStore::connect(SqliteConfig::memory())
        .await
        .expect("open an in-memory SQLite database");
    Some(Subject::new("sqlite", Arc::new(store)))
}

/// The suite on a database file shared by every case of this process.
mod file {
    use super::sqlite_file;
    idem_conformance::conformance_tests!(sqlite_file);
}

/// The suite on a private in-memory database per case.
mod memory {
    use super::sqlite_memory;
    idem_conformance::conformance_tests!(sqlite_memory);
}
