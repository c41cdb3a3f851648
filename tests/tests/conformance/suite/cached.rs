//! The suite again with the memory tier in front of each store, built the
//! way users build it: through `idem::StoreConfig` (the memory store's tier
//! directly). One row of the table below per backend.

use std::sync::{Arc, LazyLock};

use idem_conformance::{Subject, skip};
use idem_memory::{CachedStore, MemoryStore, TierConfig};
use idem_tests::facade::{process_table, through_facade};
use idem_tests::{ServerKind, server};

/// Where a cached variant's shared store lives.
enum Shared {
    /// A server of this kind; `sql` stores get this process's table.
    Server { kind: ServerKind, sql: bool },
    /// A SQLite file of its own per case.
    SqliteFile,
}

async fn tiered(name: &'static str, shared: Shared) -> Option<Subject> {
    let (url, table) = match shared {
        Shared::Server { kind, sql } => match server(kind) {
            Ok(s) => (s.url, sql.then(process_table)),
            Err(reason) => return skip(name, &reason),
        },
        Shared::SqliteFile => (sqlite_file_url(), Some(process_table())),
    };
    Some(through_facade(name, &url, table, true).await)
}

/// A fresh SQLite file: dozens of cases opening one new file at once can
/// find it locked while another sets it up (WAL, table), which is not what
/// the cached run tests.
fn sqlite_file_url() -> String {
    static DIR: LazyLock<std::path::PathBuf> = LazyLock::new(|| {
        tempfile::Builder::new()
            .prefix("idem-cached-sqlite-")
            .tempdir()
            .expect("a temporary directory")
            .keep()
    });
    let file = DIR.join(format!("idem-{}.db", uuid::Uuid::new_v4().simple()));
    format!("sqlite://{}", file.display())
}

/// One module of the suite per row: `module: "backend name" => shared store`.
macro_rules! cached {
    ($($module:ident: $name:literal => $shared:expr;)*) => {$(
        mod $module {
            #[allow(unused_imports)]
            use super::{ServerKind, Shared};

            async fn tiered() -> Option<idem_conformance::Subject> {
                super::tiered($name, $shared).await
            }

            idem_conformance::conformance_tests!(tiered);
        }
    )*};
}

cached! {
    sqlite: "cached-sqlite" => Shared::SqliteFile;
    postgres: "cached-postgres" => Shared::Server { kind: ServerKind::Postgres, sql: true };
    mysql: "cached-mysql" => Shared::Server { kind: ServerKind::Mysql, sql: true };
    mssql: "cached-mssql" => Shared::Server { kind: ServerKind::Mssql, sql: true };
    redis: "cached-redis" => Shared::Server { kind: ServerKind::Redis, sql: false };
    redis_cluster: "cached-redis-cluster" => Shared::Server { kind: ServerKind::RedisCluster, sql: false };
}

/// The memory store's own tier, built directly (no URL to go through).
mod memory {
    use super::*;

    async fn tiered() -> Option<Subject> {
        let store = CachedStore::new(Arc::new(MemoryStore::new()), TierConfig::default());
        Some(Subject::new("cached-memory", Arc::new(store)))
    }

    idem_conformance::conformance_tests!(tiered);
}
