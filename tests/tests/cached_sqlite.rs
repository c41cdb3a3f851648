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
    // A file per case: dozens of cases opening one new file at once can find
    // it locked while another sets it up (WAL, table), which is not what this
    // target tests.
    let file = DIR.join(format!("idem-{}.db", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", file.display());
    Some(through_facade("cached-sqlite", &url, Some(process_table()), true).await)
}

conformance_tests!(cached_sqlite);
