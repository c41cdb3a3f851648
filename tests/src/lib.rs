//! Test support for the conformance runs: where each backend's server comes
//! from.
//!
//! [`server`] takes the URL from `IDEM_TEST_<NAME>_URL` when it is set; else,
//! when a Docker engine answers, starts a container with testcontainers (once
//! per test process); else returns the reason there is no server, which the
//! caller hands to [`idem_conformance::skip`].

pub mod facade;
pub mod redis_cluster;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use testcontainers::core::IntoContainerPort;
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, ImageExt};
use testcontainers_modules::{
    mssql_server::MssqlServer, mysql::Mysql, postgres::Postgres, redis::Redis,
};

/// A backend that needs a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// Redis, standalone.
    Redis,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// Microsoft SQL Server.
    Mssql,
}

impl ServerKind {
    /// The environment variable that names a running server.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::Redis => "IDEM_TEST_REDIS_URL",
            Self::Postgres => "IDEM_TEST_POSTGRES_URL",
            Self::Mysql => "IDEM_TEST_MYSQL_URL",
            Self::Mssql => "IDEM_TEST_MSSQL_URL",
        }
    }
}

/// Where a server came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// From the environment variable.
    Env,
    /// Started by testcontainers for this test process.
    Testcontainers,
}

/// A server to test against.
#[derive(Debug, Clone)]
pub struct TestServer {
    /// Its connection URL.
    pub url: String,
    /// Where it came from.
    pub source: Source,
}

type Started = Result<TestServer, String>;

/// The server for `kind`, or the reason there is none.
pub fn server(kind: ServerKind) -> Result<TestServer, String> {
    if let Ok(url) = std::env::var(kind.env_var()) {
        if !url.trim().is_empty() {
            return Ok(TestServer {
                url,
                source: Source::Env,
            });
        }
    }
    static STARTED: OnceLock<Mutex<HashMap<ServerKind, Started>>> = OnceLock::new();
    let mut started = STARTED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    started
        .entry(kind)
        .or_insert_with(|| {
            // testcontainers' blocking runner starts a runtime of its own, which
            // panics inside a test's runtime: start containers on a plain thread.
            std::thread::spawn(move || start_container(kind))
                .join()
                .unwrap_or_else(|_| Err(format!("starting the {kind:?} container panicked")))
        })
        .clone()
}

fn start_container(kind: ServerKind) -> Started {
    let no_docker = |e: testcontainers::TestcontainersError| {
        format!(
            "{} is not set and no Docker engine is reachable for testcontainers ({e})",
            kind.env_var()
        )
    };
    let url = match kind {
        ServerKind::Redis => {
            let c = Redis::default()
                .with_tag("7.2")
                .start()
                .map_err(no_docker)?;
            let port = port(&c, 6379)?;
            keep(c);
            format!("redis://127.0.0.1:{port}")
        }
        ServerKind::Postgres => {
            let c = Postgres::default()
                .with_tag("16-alpine")
                .start()
                .map_err(no_docker)?;
            let port = port(&c, 5432)?;
            keep(c);
            format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres")
        }
        ServerKind::Mysql => {
            let c = Mysql::default()
                .with_tag("8.4")
                .start()
                .map_err(no_docker)?;
            let port = port(&c, 3306)?;
            keep(c);
            format!("mysql://root@127.0.0.1:{port}/test")
        }
        ServerKind::Mssql => {
            let c = MssqlServer::default()
                .with_tag("2022-latest")
                .start()
                .map_err(no_docker)?;
            let port = port(&c, 1433)?;
            keep(c);
            format!(
                "mssql://sa:yourStrong(!)Password@127.0.0.1:{port}/master?trust_server_certificate=true"
            )
        }
    };
    Ok(TestServer {
        url,
        source: Source::Testcontainers,
    })
}

fn port<I: testcontainers::Image>(c: &Container<I>, inner: u16) -> Result<u16, String> {
    c.get_host_port_ipv4(inner.tcp())
        .map_err(|e| format!("container started but its port is unknown: {e}"))
}

/// Keeps a container for the life of the test process; testcontainers'
/// reaper removes it when the process exits.
fn keep<I: testcontainers::Image + 'static>(c: Container<I>) {
    std::mem::forget(c);
}
