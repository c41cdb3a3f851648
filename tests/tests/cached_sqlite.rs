//! The conformance suite on a memory tier in front of SQLite (a file), built
//! through `idem::StoreConfig`.

use idem_conformance::{Subject, conformance_tests};
use idem_tests::facade::{process_table, through_facade};

async fn cached_sqlite() -> Option<Subject> {
    static DIR: std::sync::LazyLock<std::path::PathBuf> = std::sync::LazyLock::new(|| {
        tempfile::Builder::new()
            .prefix("idem-cached-sqlite-")
            .tempdir()
            .expect("a temporary directory")
            .keep()
    });
    let url = format!("sqlite://{}", DIR.join("idem.db").display());
    Some(through_facade("cached-sqlite", &url, Some(process_table()), true).await)
}

conformance_tests!(cached_sqlite);
