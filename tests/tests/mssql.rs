//! The conformance suite on SQL Server, from `IDEM_TEST_MSSQL_URL` (a
//! `mssql://` URL or an ADO.NET string) or testcontainers; and, always, an
//! unreachable server on a closed loopback port.

use std::sync::Arc;
use std::time::Duration;

use idem_conformance::{Subject, conformance_tests, skip};
use idem_mssql::{MssqlConfig, MssqlStore};
use idem_tests::{ServerKind, server};

/// Every case shares this table; each uses its own random keys.
const TABLE: &str = "IdemConformance";

async fn mssql() -> Option<Subject> {
    // `server` may start a container through testcontainers' blocking
    // runner, which cannot run on a runtime thread.
    let found = tokio::task::spawn_blocking(|| server(ServerKind::Mssql))
        .await
        .expect("looking for a server panicked");
    let server = match found {
        Ok(s) => s,
        Err(reason) => return skip("mssql", &reason),
    };
    let config = match MssqlConfig::parse(&server.url) {
        Ok(c) => c.with_table(TABLE),
        Err(e) => panic!("IDEM_TEST_MSSQL_URL is not usable: {e}"),
    };
    let store = MssqlStore::connect(config)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to SQL Server: {e} ({:?})", e));
    Some(Subject::new("mssql", Arc::new(store)))
}

async fn mssql_unreachable() -> Option<Subject> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port();
    let config = MssqlConfig::new("127.0.0.1")
        .with_port(port)
        .with_credentials("sa", "unused-password")
        .with_trust_server_certificate(true)
        .with_connect_timeout(Duration::from_millis(300))
        .with_command_timeout(Duration::from_secs(2));
    let store = MssqlStore::connect_lazy(config).expect("a valid config");
    Some(Subject::new("mssql", Arc::new(store)))
}

conformance_tests!(mssql, unreachable: mssql_unreachable);
