//! How to reach a MySQL or MariaDB store.

use std::fmt;
use std::str::FromStr;

use idem_core::{Error, Result, redact_url};
use serde::{Deserialize, Serialize};
use sqlx::mysql::MySqlConnectOptions;

use crate::settings::{Settings, settings_setters};

/// Where a [`MySqlStore`](crate::MySqlStore) keeps its records, and how it
/// connects (MySQL 8 or MariaDB 10.5 and later).
///
/// `Debug` shows the URL with its password replaced by `***`; `Serialize`
/// writes the URL as given, so keep serialized configs as secret as the URL.
///
/// # Examples
/// ```
/// use idem_sql::MySqlConfig;
///
/// let config = MySqlConfig::from_url("mysql://app:s3cret@127.0.0.1/app")?
///     .with_max_connections(32)
///     .with_table("idempotency");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), idem_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MySqlConfig {
    url: String,
    #[serde(flatten)]
    pub(crate) settings: Settings,
}

impl fmt::Debug for MySqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlConfig")
            .field("url", &redact_url(&self.url))
            .field("settings", &self.settings)
            .finish()
    }
}

impl MySqlConfig {
    /// Parses a `mysql://` or `mariadb://` URL (sqlx's parameters, such as
    /// `?ssl-mode=required`, are accepted).
    ///
    /// # Errors
    /// [`Error::Config`] naming what is wrong; the message shows the URL with
    /// its password hidden.
    ///
    /// # Examples
    /// ```
    /// use idem_sql::MySqlConfig;
    /// assert!(MySqlConfig::from_url("mysql://root@127.0.0.1:3306/test").is_ok());
    /// assert!(MySqlConfig::from_url("postgres://127.0.0.1/test").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = match url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None if url.starts_with("mysql://") => url.to_owned(),
            None => {
                return Err(Error::config(format!(
                    "not a MySQL URL (it must start with `mysql://` or `mariadb://`): {}",
                    redact_url(url)
                )));
            }
        };
        let config = Self {
            url,
            settings: Settings::default(),
        };
        config.connect_options()?;
        Ok(config)
    }

    /// The URL, with any password hidden.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    pub(crate) fn connect_options(&self) -> Result<MySqlConnectOptions> {
        MySqlConnectOptions::from_str(&self.url).map_err(|e| Error::Config {
            message: format!("invalid MySQL URL {}", redact_url(&self.url)),
            source: Some(Box::new(e)),
        })
    }
}

settings_setters!(MySqlConfig);
