//! How to reach Redis, and how long to wait for it.

use std::fmt;
use std::time::Duration;

use idem_core::{Result, redact_url};
use serde::{Deserialize, Serialize};

/// Connections kept by default. A pooled connection carries one operation
/// at a time, so this bounds the operations in flight to Redis: with 8, a
/// server under 32 concurrent requests ran 17-21k fresh requests/s and spent
/// 35-40 µs of CPU on each, waiting and waking; with 32, 28-32k and 22-24
/// µs (idem-tower's `bench_server` over a local Redis, wrk with 32
/// connections, 2 cores).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 32;
/// How long establishing one connection may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one store operation may take by default.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the Redis data lives.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Topology {
    /// One server (or a proxy in front of several) at this URL.
    Standalone {
        /// A `redis://`, `rediss://` or `redis+unix://` URL.
        url: String,
    },
    /// A Redis Cluster, discovered from any of these nodes.
    Cluster {
        /// One `redis://host:port` (or `rediss://`) URL per seed node.
        nodes: Vec<String>,
    },
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standalone { url } => f
                .debug_struct("Standalone")
                .field("url", &redact_url(url))
                .finish(),
            Self::Cluster { nodes } => f
                .debug_struct("Cluster")
                .field(
                    "nodes",
                    &nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

/// The configuration of a [`crate::RedisStore`].
///
/// Built from a URL, then adjusted with the `with_*` setters. Its `Debug`
/// output never shows a password.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_redis::RedisConfig;
///
/// let config = RedisConfig::from_url("redis://:s3cret@127.0.0.1:6379/0")?
///     .with_max_connections(4)
///     .with_connect_timeout(Duration::from_millis(300))
///     .with_operation_timeout(Duration::from_millis(200));
/// assert!(!format!("{config:?}").contains("s3cret"));
///
/// let cluster = RedisConfig::from_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000")?;
/// assert!(cluster.is_cluster());
/// # Ok::<(), idem_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisConfig {
    topology: Topology,
    max_connections: u32,
    connect_timeout: Duration,
    operation_timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("topology", &self.topology)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// Reads a connection URL.
    ///
    /// - `redis://[user:password@]host[:port][/db]`, `rediss://...` (TLS, with
    ///   the `tls` feature), `redis+unix:///path/to/socket`: one server.
    /// - `redis+cluster://[user:password@]host[:port],host[:port],...` (and
    ///   `rediss+cluster://`): a Redis Cluster, reached through any of the
    ///   listed nodes; every node gets the same credentials. The port defaults
    ///   to 6379; IPv6 hosts go in brackets.
    ///
    /// Pool size and timeouts start at [`DEFAULT_MAX_CONNECTIONS`],
    /// [`DEFAULT_CONNECT_TIMEOUT`] and [`DEFAULT_OPERATION_TIMEOUT`].
    ///
    /// # Errors
    /// [`idem_core::Error::Config`] saying what is wrong, never showing the password.
    ///
    /// # Examples
    /// ```
    /// use idem_redis::{RedisConfig, Topology};
    /// let config = RedisConfig::from_url("redis+cluster://h1:7000,h2:7001")?;
    /// assert_eq!(
    ///     config.topology(),
    ///     &Topology::Cluster { nodes: vec!["redis://h1:7000".into(), "redis://h2:7001".into()] }
    /// );
    /// assert!(RedisConfig::from_url("http://h1").is_err());
    /// # Ok::<(), idem_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        Ok(Self::new(crate::url::parse(url)?))
    }

    /// A configuration for `topology`, with the default pool size and timeouts.
    pub fn new(topology: Topology) -> Self {
        Self {
            topology,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// The most connections the pool opens (at least 1). Each connection
    /// multiplexes concurrent requests, so a few are plenty.
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long establishing one connection may take (TCP, TLS, `AUTH`, and
    /// for a cluster the slot map; at least 1 ms); past it the operation that
    /// needed the connection, or `connect`, fails with `Error::Unavailable`.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The most one store operation may take ([`DEFAULT_OPERATION_TIMEOUT`],
    /// 500 ms, by default; at least 1 ms); past it the operation fails with
    /// `Error::Unavailable`, never a hang.
    ///
    /// It bounds every method of `IdempotencyStore` (`find`, `store`,
    /// `remove`, `exists`, `claim`, `extend`, `complete`, `release`) and
    /// [`RedisStore::ping`](crate::RedisStore::ping) from call to answer:
    /// waiting for a pooled connection, opening one (itself also bounded by
    /// the connect timeout), and the command. A script call that must first
    /// load the script counts as one operation. That holds for a Redis that
    /// is down, one that accepts connections and never answers, and one that
    /// stops answering mid-command, standalone or cluster.
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Where the data lives.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology, Topology::Cluster { .. })
    }

    /// The pool size.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The operation timeout.
    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords_in_every_form() {
        for url in [
            "redis://user:s3cret@127.0.0.1:6379",
            "redis+cluster://:s3cret@h1:7000,h2:7001",
        ] {
            let config = RedisConfig::from_url(url).unwrap();
            let debug = format!("{config:?}");
            assert!(!debug.contains("s3cret"), "{debug}");
            assert!(debug.contains("***"), "{debug}");
        }
    }

    #[test]
    fn defaults_stay_within_one_second() {
        let config = RedisConfig::from_url("redis://127.0.0.1").unwrap();
        assert!(config.connect_timeout() + config.operation_timeout() <= Duration::from_secs(1));
        let zero = config
            .with_max_connections(0)
            .with_operation_timeout(Duration::ZERO);
        assert_eq!(zero.max_connections(), 1);
        assert!(zero.operation_timeout() > Duration::ZERO);
    }

    #[test]
    fn serde_round_trip() {
        let config = RedisConfig::from_url("redis+cluster://h1:7000,h2:7001")
            .unwrap()
            .with_max_connections(3);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<RedisConfig>(&json).unwrap(), config);
    }
}
