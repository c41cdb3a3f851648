//! How to open a SQLite store.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use idem_core::{Error, Result, redact_url};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteConnectOptions;

use crate::settings::{Settings, settings_setters};

/// Where a [`SqliteStore`](crate::SqliteStore) keeps its records, and how.
///
/// A file database is opened in WAL mode with a busy timeout and created when
/// missing; `sqlite::memory:` is a private database that lives as long as the
/// store (one connection, kept open).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_sql::SqliteConfig;
///
/// let config = SqliteConfig::from_url("sqlite://idem.db")?
///     .with_table("idempotency")
///     .with_busy_timeout(Duration::from_secs(2));
/// assert_eq!(config.table(), "idempotency");
/// # Ok::<(), idem_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqliteConfig {
    url: String,
    #[serde(flatten)]
    pub(crate) settings: Settings,
    #[serde(default = "default_busy_timeout")]
    busy_timeout: Duration,
}

fn default_busy_timeout() -> Duration {
    Duration::from_secs(5)
}

impl fmt::Debug for SqliteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConfig")
            .field("url", &redact_url(&self.url))
            .field("settings", &self.settings)
            .field("busy_timeout", &self.busy_timeout)
            .finish()
    }
}

impl SqliteConfig {
    /// Parses a SQLite URL: `sqlite://path/to/file.db`, `sqlite:file.db`,
    /// `sqlite::memory:`, with sqlx's query parameters (`?mode=ro`, ...).
    ///
    /// # Examples
    /// ```
    /// use idem_sql::SqliteConfig;
    /// assert!(SqliteConfig::from_url("sqlite::memory:")?.is_memory());
    /// assert!(SqliteConfig::from_url("postgres://localhost/db").is_err());
    /// # Ok::<(), idem_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        if !url.starts_with("sqlite:") {
            return Err(Error::config(format!(
                "not a SQLite URL (it must start with `sqlite:`): {}",
                redact_url(url)
            )));
        }
        SqliteConnectOptions::from_str(url).map_err(|e| Error::Config {
            message: format!("invalid SQLite URL {}", redact_url(url)),
            source: Some(Box::new(e)),
        })?;
        Ok(Self {
            url: url.to_owned(),
            settings: Settings::default(),
            busy_timeout: default_busy_timeout(),
        })
    }

    /// A database file at `path`, created when missing.
    ///
    /// # Examples
    /// ```
    /// use idem_sql::SqliteConfig;
    /// let config = SqliteConfig::file("/var/lib/app/idem.db");
    /// assert!(!config.is_memory());
    /// ```
    pub fn file(path: impl AsRef<Path>) -> Self {
        Self {
            url: format!("sqlite://{}", path.as_ref().display()),
            settings: Settings::default(),
            busy_timeout: default_busy_timeout(),
        }
    }

    /// A private in-memory database, gone when the store is dropped.
    ///
    /// # Examples
    /// ```
    /// use idem_sql::SqliteConfig;
    /// assert!(SqliteConfig::memory().is_memory());
    /// ```
    pub fn memory() -> Self {
        Self {
            url: "sqlite::memory:".to_owned(),
            settings: Settings::default(),
            busy_timeout: default_busy_timeout(),
        }
    }

    /// How long a statement waits for another connection's write lock before
    /// failing with `Error::Unavailable` (default 5 s).
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether this is an in-memory database.
    pub fn is_memory(&self) -> bool {
        self.url.contains(":memory:") || self.url.contains("mode=memory")
    }

    /// The URL, with any password hidden.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    pub(crate) fn connect_options(&self) -> Result<SqliteConnectOptions> {
        let options = SqliteConnectOptions::from_str(&self.url).map_err(|e| Error::Config {
            message: format!("invalid SQLite URL {}", redact_url(&self.url)),
            source: Some(Box::new(e)),
        })?;
        let options = options.busy_timeout(self.busy_timeout);
        Ok(if self.is_memory() {
            options
        } else {
            options
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        })
    }
}

settings_setters!(SqliteConfig);
