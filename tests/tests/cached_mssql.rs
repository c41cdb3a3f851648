//! The conformance suite on a memory tier in front of SQL Server, built
//! through `idem::StoreConfig` (runs where a server or Docker is present).

use idem_conformance::{Subject, conformance_tests, skip};
use idem_tests::facade::{process_table, through_facade};
use idem_tests::{ServerKind, server};

async fn cached_mssql() -> Option<Subject> {
    let server = match server(ServerKind::Mssql) {
        Ok(s) => s,
        Err(reason) => return skip("cached-mssql", &reason),
    };
    Some(through_facade("cached-mssql", &server.url, Some(process_table()), true).await)
}

conformance_tests!(cached_mssql);
