//! The backends the conformance suite runs on. A new backend is one entry.

use crate::servers::Kind;

/// Where a backend's server comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Server {
    /// In process or a local file: always available.
    Embedded,
    /// A server of this kind: at the URL in its environment variable, else
    /// in a container this run starts (see [`crate::servers`]).
    External(Kind),
}

/// One backend: its name, the `idem-tests` test target that runs it, and its
/// server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backend {
    pub(crate) name: &'static str,
    pub(crate) test: &'static str,
    pub(crate) server: Server,
}

pub(crate) const BACKENDS: &[Backend] = &[
    Backend {
        name: "memory",
        test: "memory",
        server: Server::Embedded,
    },
    Backend {
        name: "cached-memory",
        test: "cached_memory",
        server: Server::Embedded,
    },
    Backend {
        name: "sqlite",
        test: "sqlite",
        server: Server::Embedded,
    },
    Backend {
        name: "postgres",
        test: "postgres",
        server: Server::External(Kind::Postgres),
    },
    Backend {
        name: "mysql",
        test: "mysql",
        server: Server::External(Kind::Mysql),
    },
    Backend {
        name: "mssql",
        test: "mssql",
        server: Server::External(Kind::Mssql),
    },
    Backend {
        name: "redis",
        test: "redis",
        server: Server::External(Kind::Redis),
    },
    Backend {
        name: "redis-cluster",
        test: "redis_cluster",
        server: Server::External(Kind::RedisCluster),
    },
    Backend {
        name: "cached-sqlite",
        test: "cached_sqlite",
        server: Server::Embedded,
    },
    Backend {
        name: "cached-postgres",
        test: "cached_postgres",
        server: Server::External(Kind::Postgres),
    },
    Backend {
        name: "cached-mysql",
        test: "cached_mysql",
        server: Server::External(Kind::Mysql),
    },
    Backend {
        name: "cached-mssql",
        test: "cached_mssql",
        server: Server::External(Kind::Mssql),
    },
    Backend {
        name: "cached-redis",
        test: "cached_redis",
        server: Server::External(Kind::Redis),
    },
    Backend {
        name: "cached-redis-cluster",
        test: "cached_redis_cluster",
        server: Server::External(Kind::RedisCluster),
    },
];
