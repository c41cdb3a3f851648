//! The conformance suite on a memory tier in front of Postgres, built through
//! `idem::StoreConfig` in a table of this test process.

use idem_conformance::{Subject, conformance_tests, skip};
use idem_tests::facade::{process_table, through_facade};
use idem_tests::{ServerKind, server};

async fn cached_postgres() -> Option<Subject> {
    let server = match server(ServerKind::Postgres) {
        Ok(s) => s,
        Err(reason) => return skip("cached-postgres", &reason),
    };
    Some(through_facade("cached-postgres", &server.url, Some(process_table()), true).await)
}

conformance_tests!(cached_postgres);
