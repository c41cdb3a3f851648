//! One config type for every backend, from a TOML file and the environment.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Provider};
use idem_core::{
    DEFAULT_COMPLETION_BOUND, DEFAULT_LEASE, DEFAULT_PREFIX, DEFAULT_RETENTION, Error, Idempotency,
    IdempotencyStore, KeySpace, Result, redact_url,
};
use idem_memory::{Capacity, TierConfig};
use serde::{Deserialize, Serialize};

/// Everything needed to build a store and the engine over it.
///
/// Loads with [`StoreConfig::load`] from a TOML file and then from `IDEM_*`
/// environment variables, the environment winning. Every field below is read
/// from the variable named after it, in upper case with the `IDEM_` prefix:
/// `store_url` from `IDEM_STORE_URL`, `lease` from `IDEM_LEASE`,
/// `operation_timeout` from `IDEM_OPERATION_TIMEOUT`, and so on; no other
/// `IDEM_*` variable is read. Durations are written as `"500ms"`, `"60s"`,
/// `"24h"`.
///
/// # Examples
/// ```
/// use idem::StoreConfig;
/// let config = StoreConfig::from_url("redis://:secret@127.0.0.1:6379");
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// Which store, as a URL: `memory://`, `sqlite://path`, `sqlite::memory:`,
    /// `postgres://`, `mysql://`, `mariadb://`, `redis://`, `rediss://`,
    /// `redis+cluster://h1:p1,h2:p2`, `mssql://` or an ADO.NET string.
    pub store_url: String,
    /// The prefix of every storage key.
    pub key_prefix: String,
    /// How long a claim holds a key: after a server crashed mid-run, its keys
    /// run again after this long ([`Idempotency::with_lease`]).
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often a running handler's lease is renewed; unset: every third
    /// of the lease, `"0s"`: never ([`Idempotency::with_renewal`]).
    #[serde(with = "humantime_serde")]
    pub renewal: Option<Duration>,
    /// How long, at most, a caller waits after its handler ran while the
    /// result is stored through store errors
    /// ([`Idempotency::with_completion_bound`]).
    #[serde(with = "humantime_serde")]
    pub completion_bound: Duration,
    /// How long a completed record is replayed.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Pool size, for backends with a pool (each backend's
    /// `with_max_connections`).
    pub max_connections: Option<u32>,
    /// How long establishing a connection may take: `connect` fails as
    /// unavailable when the server has not answered within it (each
    /// backend's `with_connect_timeout`).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// How long one store operation may take, waiting for a pooled
    /// connection included (each backend's `with_operation_timeout`).
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Option<Duration>,
    /// The table, for SQL backends.
    pub table: Option<String>,
    /// Whether SQL backends create their table on first use.
    pub migrations: Option<bool>,
    /// Whether a memory tier ([`idem_memory::CachedStore`]) goes in front.
    pub tier: bool,
    /// The tier's TTL per entry.
    #[serde(with = "humantime_serde")]
    pub tier_ttl: Duration,
    /// The tier's entry limit.
    pub tier_max_entries: u64,
    /// The tier's byte limit.
    pub tier_max_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let tier = TierConfig::default();
        Self {
            store_url: "memory://".into(),
            key_prefix: DEFAULT_PREFIX.into(),
            lease: DEFAULT_LEASE,
            renewal: None,
            completion_bound: DEFAULT_COMPLETION_BOUND,
            retention: DEFAULT_RETENTION,
            max_connections: None,
            connect_timeout: None,
            operation_timeout: None,
            table: None,
            migrations: None,
            tier: false,
            tier_ttl: tier.ttl(),
            tier_max_entries: tier.capacity().max_entries().unwrap_or(10_000),
            tier_max_bytes: tier.capacity().max_bytes().unwrap_or(64 << 20),
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("store_url", &redact_url(&self.store_url))
            .field("key_prefix", &self.key_prefix)
            .field("lease", &self.lease)
            .field("renewal", &self.renewal)
            .field("completion_bound", &self.completion_bound)
            .field("retention", &self.retention)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("table", &self.table)
            .field("migrations", &self.migrations)
            .field("tier", &self.tier)
            .field("tier_ttl", &self.tier_ttl)
            .field("tier_max_entries", &self.tier_max_entries)
            .field("tier_max_bytes", &self.tier_max_bytes)
            .finish()
    }
}

impl StoreConfig {
    /// Defaults with this store URL.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            store_url: url.into(),
            ..Self::default()
        }
    }

    /// Loads the config: defaults, then the TOML file at `file` if given,
    /// then `IDEM_*` environment variables (the environment wins).
    ///
    /// # Errors
    /// [`Error::Config`] when the file cannot be read or a value has the wrong
    /// type; the message names the key.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> idem::Result<()> {
    /// let config = idem::StoreConfig::load(Some("idem.toml".as_ref()))?;
    /// # let _ = config; Ok(()) }
    /// ```
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(Error::config(format!(
                    "config file {} not found",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        let keys = env_keys();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        figment
            .merge(Env::prefixed("IDEM_").only(&keys))
            .extract()
            .map_err(|e| Error::Config {
                message: format!("invalid idem configuration: {}", redact_url(&e.to_string())),
                source: None,
            })
    }

    /// The key space built from [`StoreConfig::key_prefix`].
    pub fn key_space(&self) -> Result<KeySpace> {
        Ok(KeySpace::new(self.key_prefix.clone())?)
    }

    /// The tier settings.
    pub fn tier_config(&self) -> TierConfig {
        TierConfig::default().with_ttl(self.tier_ttl).with_capacity(
            Capacity::unbounded()
                .with_max_entries(self.tier_max_entries)
                .with_max_bytes(self.tier_max_bytes),
        )
    }

    /// Connects to the store and returns the protocol engine over it, with
    /// this config's lease, renewal, completion bound and retention.
    pub async fn engine(&self) -> Result<Idempotency> {
        Ok(self.engine_over(self.connect().await?))
    }

    /// The protocol engine over a store built elsewhere (wrapped for tests,
    /// say), with this config's lease, renewal, completion bound and
    /// retention.
    ///
    /// # Examples
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use idem::StoreConfig;
    ///
    /// let mut config = StoreConfig::default();
    /// config.lease = Duration::from_secs(3);
    /// let engine = config.engine_over(Arc::new(idem_memory::MemoryStore::new()));
    /// assert_eq!(engine.lease(), Duration::from_secs(3));
    /// ```
    pub fn engine_over(&self, store: Arc<dyn IdempotencyStore>) -> Idempotency {
        let engine = Idempotency::new(store)
            .with_lease(self.lease)
            .with_completion_bound(self.completion_bound)
            .with_retention(self.retention);
        match self.renewal {
            Some(every) => engine.with_renewal(every),
            None => engine,
        }
    }
}

/// The environment variables read (without the `IDEM_` prefix): the
/// fields' names, as serde writes them, so that others such as
/// `IDEM_TEST_REDIS_URL` are never mistaken for config.
fn env_keys() -> Vec<String> {
    Serialized::defaults(StoreConfig::default())
        .data()
        .ok()
        .and_then(|profiles| profiles.into_values().next())
        .map(|fields| fields.into_keys().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_its_variable_and_shows_in_debug() {
        let keys = env_keys();
        for key in ["store_url", "lease", "operation_timeout", "tier_max_bytes"] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
        let debug = format!("{:?}", StoreConfig::default());
        for key in &keys {
            assert!(debug.contains(&format!("{key}: ")), "{key} in {debug}");
        }
    }
}
