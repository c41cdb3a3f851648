//! One config type for every backend, from a TOML file and the environment.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use idem_core::{
    DEFAULT_LEASE, DEFAULT_PREFIX, DEFAULT_RETENTION, Error, Idempotency, KeySpace, Result,
    redact_url,
};
use idem_memory::{Capacity, TierConfig};
use serde::{Deserialize, Serialize};

/// Everything needed to build a store and the engine over it.
///
/// Loads with [`StoreConfig::load`] from a TOML file and then from `IDEM_*`
/// environment variables, the environment winning. Each field's variable is
/// its name in upper case with the `IDEM_` prefix: `IDEM_STORE_URL`,
/// `IDEM_KEY_PREFIX`, `IDEM_LEASE` (`"60s"`), `IDEM_RETENTION` (`"24h"`),
/// `IDEM_MAX_CONNECTIONS`, `IDEM_CONNECT_TIMEOUT`, `IDEM_COMMAND_TIMEOUT`,
/// `IDEM_TABLE`, `IDEM_MIGRATIONS`, `IDEM_TIER`, `IDEM_TIER_TTL`,
/// `IDEM_TIER_MAX_ENTRIES`, `IDEM_TIER_MAX_BYTES`. Durations are written as
/// `"500ms"`, `"60s"`, `"24h"`.
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
    /// How long a claim holds a key.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How long a completed record is replayed.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Pool size, for backends with a pool.
    pub max_connections: Option<u32>,
    /// How long connecting may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// How long one command may take (for SQL, waiting for a pooled connection).
    #[serde(with = "humantime_serde")]
    pub command_timeout: Option<Duration>,
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
            retention: DEFAULT_RETENTION,
            max_connections: None,
            connect_timeout: None,
            command_timeout: None,
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
            .field("retention", &self.retention)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("table", &self.table)
            .field("migrations", &self.migrations)
            .field("tier", &self.tier)
            .field("tier_ttl", &self.tier_ttl)
            .finish_non_exhaustive()
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
        figment
            .merge(Env::prefixed("IDEM_").only(&ENV_KEYS))
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
    /// this config's lease and retention.
    pub async fn engine(&self) -> Result<Idempotency> {
        Ok(Idempotency::new(self.connect().await?)
            .with_lease(self.lease)
            .with_retention(self.retention))
    }
}

/// The environment variables read (without the `IDEM_` prefix), so that
/// others such as `IDEM_TEST_REDIS_URL` are never mistaken for config.
const ENV_KEYS: [&str; 13] = [
    "store_url",
    "key_prefix",
    "lease",
    "retention",
    "max_connections",
    "connect_timeout",
    "command_timeout",
    "table",
    "migrations",
    "tier",
    "tier_ttl",
    "tier_max_entries",
    "tier_max_bytes",
];
