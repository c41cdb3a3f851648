//! The conformance suite on a memory tier in front of Mysql, built through
//! `idem::StoreConfig` in a table of this test process.

use idem_conformance::{Subject, conformance_tests, skip};
use idem_tests::facade::{process_table, through_facade};
use idem_tests::{ServerKind, server};

async fn cached_mysql() -> Option<Subject> {
    let server = match server(ServerKind::Mysql) {
        Ok(s) => s,
        Err(reason) => return skip("cached-mysql", &reason),
    };
    Some(through_facade("cached-mysql", &server.url, Some(process_table()), true).await)
}

conformance_tests!(cached_mysql);
