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

/// One backend: its name, its module in the `conformance` test binary of
/// `idem-tests` (the suite and its own checks), and its server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backend {
    pub(crate) name: &'static str,
    pub(crate) module: &'static str,
    pub(crate) server: Server,
}

pub(crate) const BACKENDS: &[Backend] = &[
    Backend {
        name: "memory",
        module: "memory",
        server: Server::Embedded,
    },
    Backend {
        name: "cached-memory",
        module: "cached::memory",
        server: Server::Embedded,
    },
    Backend {
        name: "sqlite",
        module: "sqlite",
        server: Server::Embedded,
    },
    Backend {
        name: "postgres",
        module: "postgres",
        server: Server::External(Kind::Postgres),
    },
    Backend {
        name: "mysql",
        module: "mysql",
        server: Server::External(Kind::Mysql),
    },
    Backend {
        name: "mssql",
        module: "mssql",
        server: Server::External(Kind::Mssql),
    },
    Backend {
        name: "redis",
        module: "redis",
        server: Server::External(Kind::Redis),
    },
    Backend {
        name: "redis-cluster",
        module: "redis_cluster",
        server: Server::External(Kind::RedisCluster),
    },
    Backend {
        name: "cached-sqlite",
        module: "cached::sqlite",
        server: Server::Embedded,
    },
    Backend {
        name: "cached-postgres",
        module: "cached::postgres",
        server: Server::External(Kind::Postgres),
    },
    Backend {
        name: "cached-mysql",
        module: "cached::mysql",
        server: Server::External(Kind::Mysql),
    },
    Backend {
        name: "cached-mssql",
        module: "cached::mssql",
        server: Server::External(Kind::Mssql),
    },
    Backend {
        name: "cached-redis",
        module: "cached::redis",
        server: Server::External(Kind::Redis),
    },
    Backend {
        name: "cached-redis-cluster",
        module: "cached::redis_cluster",
        server: Server::External(Kind::RedisCluster),
    },
];
