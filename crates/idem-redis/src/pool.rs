//! Pools of multiplexed connections, for one server or for a cluster.
//!
//! deadpool-redis' own managers check every connection with a `PING` each
//! time it leaves the pool: one more round trip per operation, which would
//! make a fresh request cost four round trips instead of two. These managers
//! hand connections out as they are; a connection that fails with an I/O
//! error or a timeout is taken out of the pool by [`Pool::run`] instead, so
//! after an outage each stale connection fails once and is replaced.

use std::fmt;
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, RecycleResult};
use idem_core::{Error, Result};
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture,
    ScriptInvocation, Value,
};

use crate::RedisConfig;
use crate::config::Topology;
use crate::error::{BACKEND, RedisStoreError, from_pool, from_redis, is_transient};

/// Makes connections to one server, through deadpool-redis' manager.
pub(crate) struct SingleManager(deadpool_redis::Manager);

impl managed::Manager for SingleManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        managed::Manager::create(&self.0).await
    }

    async fn recycle(
        &self,
        _: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        Ok(())
    }
}

/// Makes cluster connections (each one reaches every node and follows the
/// slot map, `MOVED` and `ASK` by itself).
pub(crate) struct ClusterManager(ClusterClient);

impl managed::Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<ClusterConnection, RedisError> {
        self.0.get_async_connection().await
    }

    async fn recycle(&self, _: &mut ClusterConnection, _: &Metrics) -> RecycleResult<RedisError> {
        Ok(())
    }
}

/// A pool for either topology, or an application's own connection.
#[derive(Clone)]
pub(crate) enum Pool {
    Single(managed::Pool<SingleManager>),
    Cluster(managed::Pool<ClusterManager>),
    /// The application's [`ConnectionManager`]: one multiplexed
    /// connection, shared, that reconnects by itself.
    Shared(ConnectionManager),
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, status) = match self {
            Self::Single(p) => ("standalone", p.status()),
            Self::Cluster(p) => ("cluster", p.status()),
            Self::Shared(_) => {
                return f
                    .debug_struct("Pool")
                    .field("kind", &"connection manager")
                    .finish();
            }
        };
        f.debug_struct("Pool")
            .field("kind", &kind)
            .field("size", &status.size)
            .field("available", &status.available)
            .field("max_size", &status.max_size)
            .finish()
    }
}

/// One request: a command, or a script call (`EVALSHA`, loading the script
/// when the server does not know it).
pub(crate) enum Call<'a> {
    Cmd(Cmd),
    Script(ScriptInvocation<'a>),
    /// A command for one node of a cluster, by its address (for `SCAN`);
    /// on a standalone server, for that server.
    Node(Cmd, &'a str, u16),
}

impl Call<'_> {
    async fn send<T: FromRedisValue>(&self, conn: &mut Conn) -> Result<T, RedisError> {
        match self {
            Self::Cmd(cmd) => cmd.query_async(conn).await,
            Self::Script(script) => script.invoke_async(conn).await,
            Self::Node(cmd, host, port) => match conn {
                Conn::Cluster(c) => {
                    let host = (*host).to_owned();
                    let node = SingleNodeRoutingInfo::ByAddress { host, port: *port };
                    let value = c
                        .route_command(cmd.clone(), RoutingInfo::SingleNode(node))
                        .await?;
                    Ok(T::from_redis_value(value)?)
                }
                Conn::Single(_) | Conn::Shared(_) => cmd.query_async(conn).await,
            },
        }
    }
}

/// A pooled connection of either kind.
pub(crate) enum Conn {
    Single(Object<SingleManager>),
    Cluster(Object<ClusterManager>),
    Shared(ConnectionManager),
}

impl Conn {
    /// Drops the connection instead of returning it to the pool.
    fn discard(self) {
        match self {
            Self::Single(o) => drop(Object::take(o)),
            Self::Cluster(o) => drop(Object::take(o)),
            // The manager reconnects by itself.
            Self::Shared(_) => {}
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Shared(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Self::Shared(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Shared(c) => c.get_db(),
        }
    }
}

impl Pool {
    /// Builds the pool; no connection is opened until the first operation.
    pub(crate) fn new(config: &RedisConfig) -> Result<Self> {
        let timeouts = managed::Timeouts {
            wait: Some(config.operation_timeout()),
            create: Some(config.connect_timeout()),
            recycle: None,
        };
        let size = config.max_connections() as usize;
        let built = match config.topology() {
            Topology::Standalone { url } => {
                let connection = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.connect_timeout()))
                    .set_response_timeout(Some(config.operation_timeout()));
                let manager = deadpool_redis::Manager::new_with_config(url.as_str(), connection)
                    .map_err(bad_config)?;
                managed::Pool::builder(SingleManager(manager))
                    .max_size(size)
                    .timeouts(timeouts)
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map(Self::Single)
            }
            Topology::Cluster { nodes } => {
                let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    .connection_timeout(config.connect_timeout())
                    .response_timeout(config.operation_timeout())
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(100)
                    .build()
                    .map_err(bad_config)?;
                managed::Pool::builder(ClusterManager(client))
                    .max_size(size)
                    .timeouts(timeouts)
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map(Self::Cluster)
            }
        };
        built.map_err(|e| Error::config(format!("cannot build the Redis pool: {e}")))
    }

    async fn get(&self) -> Result<Conn, deadpool::managed::PoolError<RedisError>> {
        Ok(match self {
            Self::Single(p) => Conn::Single(p.get().await?),
            Self::Cluster(p) => Conn::Cluster(p.get().await?),
            Self::Shared(m) => Conn::Shared(m.clone()),
        })
    }

    /// Runs one operation on a pooled connection within `timeout`, getting
    /// the connection included (opening one is also bounded by the connect
    /// timeout the pool was built with); running out is
    /// [`Error::Unavailable`]. A connection whose operation failed for a
    /// transient reason is dropped, not pooled again.
    pub(crate) async fn run<T: FromRedisValue>(
        &self,
        timeout: Duration,
        call: Call<'_>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || Error::unavailable(BACKEND, RedisStoreError::OperationTimeout(timeout));
        let mut conn = match tokio::time::timeout_at(deadline, self.get()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(from_pool(e)),
            Err(_) => return Err(timed_out()),
        };
        let result = tokio::time::timeout_at(deadline, call.send(&mut conn)).await;
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if is_transient(&e) {
                    conn.discard();
                }
                Err(from_redis(e))
            }
            Err(_) => {
                conn.discard();
                Err(timed_out())
            }
        }
    }
}

fn bad_config(e: RedisError) -> Error {
    Error::config(format!(
        "the redis crate refused the configuration: {}",
        e.detail().unwrap_or("invalid client configuration")
    ))
}
