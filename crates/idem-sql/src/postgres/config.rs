//! How to reach a PostgreSQL store.

use std::fmt;
use std::str::FromStr;

use idem_core::{Error, Result, redact_url};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;

use crate::settings::{Settings, settings_setters};

/// Where a [`PostgresStore`](crate::PostgresStore) keeps its records, and
/// how it connects.
///
/// `Debug` shows the URL with its password replaced by `***`; `Serialize`
/// writes the URL as given (it is the config), so keep serialized configs
/// as secret as the URL.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_sql::PostgresConfig;
///
/// let config = PostgresConfig::from_url("postgres://app:s3cret@127.0.0.1/app")?
///     .with_max_connections(32)
///     .with_operation_timeout(Duration::from_secs(2))
///     .with_table("idempotency");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), idem_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresConfig {
    url: String,
    #[serde(flatten)]
    pub(crate) settings: Settings,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("settings", &self.settings)
            .finish()
    }
}

impl PostgresConfig {
    /// Parses a `postgres://` or `postgresql://` URL (sqlx's parameters, such
    /// as `?sslmode=require`, are accepted).
    ///
    /// # Errors
    /// [`Error::Config`] naming what is wrong; the message shows the URL with
    /// its password hidden.
    ///
    /// # Examples
    /// ```
    /// use idem_sql::PostgresConfig;
    /// assert!(PostgresConfig::from_url("postgres://postgres@127.0.0.1:5432/test").is_ok());
    /// let err = PostgresConfig::from_url("mysql://root:pw@db/test").unwrap_err();
    /// assert!(!err.to_string().contains("pw@"));
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::config(format!(
                "not a PostgreSQL URL (it must start with `postgres://` or `postgresql://`): {}",
                redact_url(url)
            )));
        }
        let config = Self {
            url: url.to_owned(),
            settings: Settings::default(),
        };
        config.connect_options()?;
        Ok(config)
    }

    /// The URL, with any password hidden.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions> {
        PgConnectOptions::from_str(&self.url).map_err(|e| Error::Config {
            message: format!("invalid PostgreSQL URL {}", redact_url(&self.url)),
            source: Some(Box::new(e)),
        })
    }
}

settings_setters!(PostgresConfig);
