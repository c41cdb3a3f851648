//! The Redis store: one command per operation.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use idem_core::{Claim, Error, IdempotencyStore, LeaseToken, Result, StoreKey, async_trait};
use redis::FromRedisValue;

use crate::RedisConfig;
use crate::envelope;
use crate::pool::{Call, Pool};
use crate::scripts::Scripts;

mod stats;

/// Longest expiry sent to Redis, in milliseconds (about 3 000 years): Redis
/// refuses an expiry whose absolute time would overflow.
const MAX_TTL_MS: u128 = 1 << 40 << 6;

/// An idempotency store on Redis, standalone or Redis Cluster.
///
/// Every operation is one command on one key, so in a cluster it runs on the
/// node that owns the key's slot:
///
/// | operation | command |
/// |---|---|
/// | `claim` | `SET key value NX PX lease GET` (Redis 7.0 or later) |
/// | `extend`, `complete`, `release` | `EVALSHA` of a script that checks the token, then writes (`PEXPIRE`, `SET ... PX`, `DEL`) |
/// | `find`, `store`, `remove`, `exists` | `GET`, `SET ... PX`, `DEL`, `EXISTS` |
///
/// Expiry is Redis' (`PX`, milliseconds), so app servers with skewed clocks
/// agree. An in-progress record keeps its lease token in front of the
/// caller's bytes inside the one string. Connections come from a deadpool
/// pool of multiplexed connections; a Redis that is down or slow gives
/// [`Error::Unavailable`] within the operation timeout (500 ms by default),
/// and the same store works again once Redis is back.
///
/// # Examples
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idem_core::Result<()> {
/// use std::time::Duration;
/// use idem_core::{IdempotencyStore, StoreKey};
/// use idem_redis::{RedisConfig, RedisStore};
///
/// let store = RedisStore::connect(RedisConfig::from_url("redis://127.0.0.1:6379")?).await?;
/// let key = StoreKey::parse("idempotency:orders:42")?;
/// store.store(&key, "done".into(), Duration::from_secs(60)).await?;
/// assert_eq!(store.find(&key).await?.as_deref(), Some(&b"done"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    scripts: Scripts,
    config: RedisConfig,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .field("pool", &self.pool)
            .finish()
    }
}

impl RedisStore {
    /// Builds the store and checks that Redis answers (one `PING`).
    ///
    /// # Errors
    /// [`Error::Config`] for a configuration the redis crate refuses,
    /// [`Error::Unavailable`] when Redis does not answer in time.
    ///
    /// # Examples
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem_core::Result<()> {
    /// use idem_redis::{RedisConfig, RedisStore};
    /// let config = RedisConfig::from_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")?;
    /// let store = RedisStore::connect(config).await?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let store = Self::connect_lazy(config)?;
        store.ping().await?;
        Ok(store)
    }

    /// Builds the store without contacting Redis: connections are opened by
    /// the first operations, so this works while Redis is still down.
    ///
    /// # Errors
    /// [`Error::Config`] for a configuration the redis crate refuses.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem_core::Result<()> {
    /// use idem_redis::{RedisConfig, RedisStore};
    /// let store = RedisStore::connect_lazy(RedisConfig::from_url("redis://127.0.0.1:6379")?)?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    pub fn connect_lazy(config: RedisConfig) -> Result<Self> {
        Ok(Self {
            pool: Pool::new(&config)?,
            scripts: Scripts::new(),
            config,
        })
    }

    /// The store on an application's own Redis connection (a
    /// [`ConnectionManager`](redis::aio::ConnectionManager): one multiplexed
    /// connection that reconnects by itself), so that the application does
    /// not open a second set of connections. From `config`, the operation
    /// timeout applies; its URL, pool size and connect timeout do not (the
    /// manager was connected with the application's own). Standalone Redis
    /// only: the manager speaks to one server. No I/O.
    ///
    /// # Examples
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use idem_redis::{RedisConfig, RedisStore};
    ///
    /// let url = "redis://127.0.0.1:6379";
    /// // The application's connection, for its own commands too.
    /// let manager = redis::Client::open(url)?.get_connection_manager().await?;
    /// let store = RedisStore::from_connection_manager(manager, RedisConfig::from_url(url)?);
    /// store.ping().await?;
    /// # Ok(()) }
    /// ```
    pub fn from_connection_manager(
        manager: redis::aio::ConnectionManager,
        config: RedisConfig,
    ) -> Self {
        Self {
            pool: Pool::Shared(manager),
            scripts: Scripts::new(),
            config,
        }
    }

    /// The configuration the store was built with.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Asks Redis for a `PONG` (on a cluster, from every master).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis does not answer in time.
    pub async fn ping(&self) -> Result<()> {
        let _: String = self.run(Call::Cmd(redis::cmd("PING"))).await?;
        Ok(())
    }

    async fn run<T: FromRedisValue>(&self, call: Call<'_>) -> Result<T> {
        self.pool.run(self.config.operation_timeout(), call).await
    }
}

fn millis(ttl: Duration) -> u64 {
    ttl.as_millis().clamp(1, MAX_TTL_MS) as u64
}

/// What a fenced script's reply means: 1 when the caller's claim was live
/// and the script wrote, else the claim was lost.
fn fenced(done: i64) -> Result<()> {
    if done == 1 {
        Ok(())
    } else {
        Err(Error::LeaseLost)
    }
}

#[async_trait]
impl IdempotencyStore for RedisStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key.as_str());
        let raw: Option<Vec<u8>> = self.run(Call::Cmd(cmd)).await?;
        raw.map(envelope::open).transpose()
    }

    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key.as_str())
            .arg(envelope::plain(&value))
            .arg("PX")
            .arg(millis(ttl));
        let _: redis::Value = self.run(Call::Cmd(cmd)).await?;
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key.as_str());
        let deleted: u64 = self.run(Call::Cmd(cmd)).await?;
        Ok(deleted > 0)
    }

    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(key.as_str());
        let found: u64 = self.run(Call::Cmd(cmd)).await?;
        Ok(found > 0)
    }

    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        let token = LeaseToken::generate();
        let mut cmd = redis::cmd("SET");
        cmd.arg(key.as_str())
            .arg(envelope::pending(&token, &pending))
            .arg("NX")
            .arg("PX")
            .arg(millis(lease))
            .arg("GET");
        let existing: Option<Vec<u8>> = self.run(Call::Cmd(cmd)).await?;
        match existing {
            None => Ok(Claim::Acquired(token)),
            Some(raw) => envelope::open(raw).map(Claim::Existing),
        }
    }

    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        let mut call = self.scripts.extend.prepare_invoke();
        call.key(key.as_str())
            .arg(&envelope::fence(token)[..])
            .arg(millis(lease));
        let done: i64 = self.run(Call::Script(call)).await?;
        fenced(done)
    }

    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let mut call = self.scripts.complete.prepare_invoke();
        call.key(key.as_str())
            .arg(&envelope::fence(token)[..])
            .arg(envelope::plain(&value))
            .arg(millis(ttl));
        let done: i64 = self.run(Call::Script(call)).await?;
        fenced(done)
    }

    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let mut call = self.scripts.release.prepare_invoke();
        call.key(key.as_str()).arg(&envelope::fence(token)[..]);
        let done: i64 = self.run(Call::Script(call)).await?;
        Ok(done == 1)
    }

    async fn stats(&self, space: &idem_core::KeySpace) -> Result<idem_core::StoreStats> {
        self.count(space).await
    }

    fn backend(&self) -> &'static str {
        crate::error::BACKEND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_whole_positive_milliseconds_redis_accepts() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(60)), 60_000);
        assert_eq!(millis(Duration::MAX) as u128, MAX_TTL_MS);
    }
}
