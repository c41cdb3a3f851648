//! Test support for the conformance runs: where each backend's server comes
//! from.
//!
//! [`server`] takes the URL from `IDEM_TEST_<NAME>_URL`, or returns the
//! reason there is none, which the caller hands to
//! [`idem_conformance::skip`]. The test processes never start servers
//! themselves: `cargo xtask conformance` (and `cargo xtask ci`) starts one
//! container per server kind with testcontainers for the whole run, sets the
//! variables, and removes the containers at the end, so none is left behind.
//! `cargo xtask servers` does the same for a run by hand.

pub mod facade;
pub mod redis_servers;

/// A backend that needs a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// Redis, standalone.
    Redis,
    /// A three-master Redis Cluster (a `redis+cluster://` URL).
    RedisCluster,
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
            Self::RedisCluster => "IDEM_TEST_REDIS_CLUSTER_URL",
            Self::Postgres => "IDEM_TEST_POSTGRES_URL",
            Self::Mysql => "IDEM_TEST_MYSQL_URL",
            Self::Mssql => "IDEM_TEST_MSSQL_URL",
        }
    }
}

/// A server to test against.
#[derive(Debug, Clone)]
pub struct TestServer {
    /// Its connection URL.
    pub url: String,
}

/// The server for `kind`, or the reason there is none.
pub fn server(kind: ServerKind) -> Result<TestServer, String> {
    match std::env::var(kind.env_var()) {
        Ok(url) if !url.trim().is_empty() => Ok(TestServer { url }),
        _ => Err(format!(
            "{} is not set (`cargo xtask conformance` starts the server in a container and sets it)",
            kind.env_var()
        )),
    }
}
